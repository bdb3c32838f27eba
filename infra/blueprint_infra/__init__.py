"""Pulumi programs, policies and offline preview for MLOps Blueprint environments.

Import submodules directly (`blueprint_infra.naming`, `blueprint_infra.program`): this package's
`__init__` stays empty so that light users (the CLI's validation) do not load Pulumi.
"""

__version__ = "0.2.0"
