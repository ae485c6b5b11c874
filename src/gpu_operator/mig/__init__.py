"""MIG: profile names, the placement solver, mig-parted's v1 config, apply/assert/export, the
layout planner and the node agent's core.

Model (``profiles``, ``spec_v1``, ``hooks_v1``) → pure core (``placement``, ``plan``,
``generate``, ``planner``, ``agent``) → thin adapters over the NVML facade (``observe``,
``apply``, ``checkpoint``, ``hooks``). Profile ids are always resolved per device.
"""
