"""The %shadow magic: the primary and the shadow model compared on the same rows, or on the traffic the
router mirrored (--live)."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import line_magic, magics_class, no_var_expand

from ..config import Settings
from . import args
from ._base import MLDeployMagics, help_of

__all__ = ["ShadowMagics"]


@magics_class
class ShadowMagics(MLDeployMagics):
    """Compare a shadow with the primary model: %shadow NAME --data VAR, or --live."""

    @no_var_expand
    @line_magic
    @help_of(args.shadow)
    def shadow(self, line: str) -> Any:
        with self._reporting() as ctx:
            req = args.parse_shadow(line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import shadow

            if req.live:
                return self._shadow_live(req, settings)
            kube, namespace = None, None
            if req.primary_url is None:  # through the API server's service proxy
                kube, namespace = self._connect(settings, req)
            how = dict(primary_url=req.primary_url, shadow_url=req.shadow_url, namespace=namespace, kube=kube,
                       mode=req.mode, tolerance=req.tolerance, model=req.model, timeout=req.timeout or 10.0)
            report = shadow.compare(req.name, req.data, **how)
            if self._live(settings):
                view = self._widget("shadow_view", "ShadowView",
                                    "%config MLDeploy.interactive = 'no' for the text report")
                return view(report, data=req.data, **how)
            return report

    def _shadow_live(self, req: args.ShadowRequest, settings: Settings) -> Any:
        """%shadow NAME --live: the stable and shadow pods' prediction logs joined, nothing sent."""
        from .. import shadow

        kube, namespace = self._connect(settings, req)
        report = shadow.live_from_pods(req.name, since=req.since, namespace=namespace, kube=kube,
                                       mode=req.mode, tolerance=req.tolerance, timeout=req.timeout or 30.0)
        if self._live(settings):
            # Without data the view only shows the report (its Refresh, which re-sends rows, stays off).
            view = self._widget("shadow_view", "ShadowView",
                                "%config MLDeploy.interactive = 'no' for the text report")
            return view(report)
        return report
