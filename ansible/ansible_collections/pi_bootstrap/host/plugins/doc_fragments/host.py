# Copyright: pi-bootstrap contributors
# MIT OR Apache-2.0
"""The options and attributes every pi_bootstrap.host module shares."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Where the binaries are, the user manager, the modes supported."""

    DOCUMENTATION = r"""
options:
  bin_dir:
    description: The folder of the installed binaries.
    type: path
    default: ~/.local/lib/pi-bootstrap/bin
  runtime_dir:
    description:
      - E(XDG_RUNTIME_DIR) of the user manager. Default, the session's, else
        C(/run/user/UID) when it exists.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - pi-bootstrap contributors
"""
