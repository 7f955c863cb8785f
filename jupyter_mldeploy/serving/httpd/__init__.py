"""A bounded HTTP/1.1 server on the standard library: what the reference model server stands on.

`http.server.ThreadingHTTPServer` trusts its clients: one thread per connection with no cap, no socket
timeout, a negative Content-Length read to the end of the stream, and a traceback on stderr for every
dropped connection. Here every resource a client can hold is bounded:

- connections: at most `max_connections` open; one "parker" thread holds every connection that is not
  being served (new ones, idle keep-alive ones) and reads its request head without blocking, so a
  worker only ever gets a connection whose head is complete: a slow or silent client (slowloris),
  or an idle keep-alive one, holds a socket and a small buffer, never a worker;
- workers: a fixed pool of `workers` threads and a waiting line of `backlog` connections with a
  complete head; past that a connection is answered 503 (by a small refuser thread) and closed;
- time: a new connection's head must be complete `header_timeout` after it was accepted (a total
  deadline, so a client dribbling one byte at a time gains nothing), each body read may wait
  `read_timeout`, the whole body `body_timeout`; an idle keep-alive connection is closed after
  `idle_timeout`;
- bytes: Content-Length must be plain digits (400), present on a body-carrying method (411), at most
  `max_body` (413), and all bodies read at once together at most `body_budget` (503); chunked bodies
  are refused with 411. The body is read into one preallocated buffer;
- logs: a client error (reset, timeout, malformed request) is one short line, at most one per kind per
  second, never a traceback.

One module per part: `limits` (Limits, HTTPError, QuietLog), `reader` (a connection's input with
deadlines), `parker` (the connections no worker serves), `server` (BoundedServer: the workers, the
refuser and the body budget) and `handler` (BoundedHandler: the body checks and the JSON answer).
Standard library only, like the rest of serving/.
"""

from __future__ import annotations

from .handler import BoundedHandler
from .limits import MAX_HEAD, HTTPError, Limits, QuietLog
from .server import BoundedServer

__all__ = ["MAX_HEAD", "BoundedHandler", "BoundedServer", "HTTPError", "Limits", "QuietLog"]
