"""Magic lines and `%%deploy` bodies -> validated requests. Pure: no cluster, no display.

Everything a user can get wrong is caught here, before any connection is made, and reported as ONE
`UsageError` sentence: argparse's own complaints are reworded, spec rules come from `DeploySpec`
(SpecError), and a broken YAML body names its line. The parsers are built with IPython's
`@magic_arguments` on stub functions, whose generated docstrings are the magics' help.

One module per magic (or family), as jupysql's `sql/cmd/` has one per subcommand:
`_deploy` (%deploy, %%deploy) with its rollout flags in `_rollout_flags`, `_target` (%undeploy,
%rollout, %rollback, %mldeploy, %promote, %release), `_rollouts` (%canary, %mirror, %steps) and
`_shadow` (%shadow). `_parser` holds the shared argparse plumbing and small flag checks, `_vars` the
`{var}` substitution. Every public name stays importable from here.
"""

from __future__ import annotations

from ._deploy import DeployRequest, deploy, parse_deploy
from ._rollout_flags import AVAILABLE_STRATEGIES, ROLLOUT_ROUTERS, ROLLOUT_STRATEGIES
from ._rollouts import (
    CanaryRequest,
    StepsRequest,
    canary,
    mirror,
    parse_canary,
    parse_mirror,
    parse_steps,
    steps,
)
from ._shadow import COMPARE_MODES, ShadowRequest, parse_shadow, shadow
from ._target import TargetRequest, mldeploy, parse_target, promote, release, rollback, rollout, undeploy
from ._vars import substitute

__all__ = ["AVAILABLE_STRATEGIES", "COMPARE_MODES", "ROLLOUT_ROUTERS",
           "ROLLOUT_STRATEGIES", "CanaryRequest", "DeployRequest", "ShadowRequest", "StepsRequest",
           "TargetRequest", "canary", "deploy", "mirror", "mldeploy", "parse_canary", "parse_deploy",
           "parse_mirror", "parse_shadow", "parse_steps", "parse_target", "promote", "release", "rollback",
           "rollout", "shadow", "steps", "substitute", "undeploy"]

for _stub in (deploy, undeploy, rollout, rollback, mldeploy, canary, mirror, promote, release, steps, shadow):
    # a typo like --ima must not silently mean --image, and later flags must not change old lines
    _stub.parser.allow_abbrev = False
