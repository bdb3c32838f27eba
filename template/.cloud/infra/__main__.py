"""One environment of this project: the stack's config decides which (`pulumi stack select`).

The program itself lives in the MLOps Blueprint package (requirements.txt) so that every project
gets the same locked-down environments and fixes arrive with a version bump.
"""

from blueprint_infra.program import run_environment

run_environment()
