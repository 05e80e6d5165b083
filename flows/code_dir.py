"""The pull step every deployment runs on its worker: go to this worker's copy of the code.

`prefect deploy` renders `{{ $VAR }}` in pull steps from the environment of the shell that
runs it whenever VAR is set there (`prefect.utilities.templating.apply_values` reads
`os.environ` for every `$` placeholder), so `directory: "{{ $OFFICE_CODE_DIR }}"` froze the
deploying machine's value into every deployment and silently overrode each worker's own.
deployments/prefect.yaml names the variable instead of templating it, and this step reads
it on the worker, when the run starts.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["INSTALLED", "enter_code_dir"]

INSTALLED = Path(__file__).resolve().parent.parent
"""Where officeflows is installed on this machine: `flows/` and the deployments' entrypoints."""


def enter_code_dir(variable: str = "OFFICE_CODE_DIR") -> dict[str, str]:
    """Work in the directory `variable` names on this worker, or where officeflows is installed.

    Returns what Prefect's own `set_working_directory` step returns, for later steps.
    """
    named = os.environ.get(variable, "").strip()
    directory = Path(named).expanduser() if named else INSTALLED
    if not (directory / "flows").is_dir():
        raise FileNotFoundError(
            f"{variable}={named} on this worker has no flows/ folder; set it to the directory "
            "officeflows is checked out in, or unset it to use the installed copy"
        )
    os.chdir(directory)
    return {"directory": str(directory)}
