"""`jupyter-mldeploy` / `python -m jupyter_mldeploy`: the command line."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import MLDeployError


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox.control_plane import Sandbox

    box = Sandbox()
    if args.action == "build":
        from .sandbox.build import ensure_binaries
        from .sandbox.crds import crd_file

        print(f"Sandbox binaries ready in {ensure_binaries()}; CRDs in {crd_file().name}.")
        if args.data_plane and os.geteuid() != 0:
            # The real node needs root to run, so its tests skip without it: nothing to build for them.
            print("Data plane parts not built: the real node runs only as root (build them as root, or "
                  "pass --no-data-plane to say so).")
        elif args.data_plane:
            from .sandbox import dataplane_build, images

            dataplane_build.ensure_parts()
            layers = images.build_layers()
            print("Data plane binaries ready: "
                  + ", ".join(f"{p.name} {p.version}" for p in dataplane_build.PARTS)
                  + f"; image layers in {layers[0].parent}.")
        if args.knative:
            from .sandbox import knative

            where = knative.ensure_binaries()
            knative.module_dirs()  # its YAML, read at `up` from the module cache: fetched now, not then
            print(f"Knative Serving binaries ready in {where}.")
            if args.data_plane and os.geteuid() == 0:
                # Its networking layer runs on the real node's network only, so only beside it.
                from .sandbox import dataplane_build

                dataplane_build.ensure_parts((dataplane_build.TRAEFIK,))
                print(f"Knative's networking layer ready: Traefik {dataplane_build.TRAEFIK.version}.")
    elif args.action == "up":
        info = box.up(data_plane=args.data_plane, knative=True if args.knative else None)
        print(f"export KUBECONFIG={info['kubeconfig']}")
    elif args.action == "down":
        box.down()
    elif args.action == "env":
        info = box.status()
        if not info["up"]:
            print("The sandbox is not up: run `jupyter-mldeploy sandbox up` first.", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={info['kubeconfig']}")
    elif args.action == "status":
        info = box.status()
        if not info.get("processes"):
            print(f"The sandbox is not up (state folder {info['dir']}).")
            return 1
        print(f"The sandbox is {'up' if info['up'] else 'NOT answering'}: API server {info['server']}, "
              f"Kubernetes {info['versions']['kubernetes']}, kubeconfig {info['kubeconfig']}")
        for name, proc in info["processes"].items():
            print(f"  {name:<24} pid {proc['pid']:<8} {'running' if proc['alive'] else 'EXITED'}")
        _print_data_plane(info.get("data_plane") or {})
        from .sandbox.knative import status_line

        line = status_line(box)
        if line:
            print(line)
        return 0 if info["up"] else 1
    return 0


def _print_data_plane(dp: dict) -> None:
    if not dp.get("processes"):
        print("The real data plane is not running (start it with `jupyter-mldeploy sandbox up`).")
        return
    gw = ""
    if dp.get("gateway_ref"):
        answering = "serving" if dp.get("gateway_serving") else "NOT answering"
        gw = f", Gateway {dp['gateway_ref']} at {dp['gateway_url']} ({answering})"
    if dp.get("ingress_nginx_url"):
        gw += f", nginx Ingresses at {dp['ingress_nginx_url']} (Traefik's ingress-nginx provider)"
    print(f"The real data plane is {'up' if dp['up'] else 'NOT complete'}: node {dp['node']} at "
          f"{dp['node_ip']} (bridge {dp['bridge']}, pods on {dp['subnet']}), registry {dp['registry']}{gw}")
    for name, proc in dp["processes"].items():
        print(f"  {name:<24} pid {proc['pid']:<8} {'running' if proc['alive'] else 'EXITED'}")


def _demo(args: argparse.Namespace) -> int:
    from .magics.demo import run_demo

    return run_demo(args.output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter-mldeploy",
                                     description="Put a machine-learning model on Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True)
    sb = sub.add_parser("sandbox", help="a local Kubernetes control plane with simulated nodes (kwok)")
    sb.add_argument("action", choices=["up", "down", "status", "env", "build"],
                    help="up: build if needed and start; down: stop and remove; status; env: print "
                         "export KUBECONFIG=...; build: only build and cache the binaries")
    sb.add_argument("--no-data-plane", dest="data_plane", action="store_false",
                    help="up: only the control plane and simulated nodes (a quick start, no root needed); "
                         "build: only the control plane's binaries")
    sb.add_argument("--knative", action="store_true",
                    help="with up: also run Knative Serving's controller, webhook, autoscaler and activator "
                         "(built once from knative.dev/serving; needs root for their network namespaces); "
                         "also MLDEPLOY_SANDBOX_KNATIVE=1; with build: build those too")
    sb.set_defaults(func=_sandbox)
    dm = sub.add_parser("demo", help="run the quickstart notebook headless against the sandbox")
    dm.add_argument("--output", default=None,
                    help="where to write the executed notebook (default ./quickstart-output.ipynb)")
    dm.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MLDeployError as e:
        print(f"jupyter-mldeploy: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jupyter-mldeploy: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
