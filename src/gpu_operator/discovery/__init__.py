"""Feature discovery (upstream gpu-feature-discovery): the ``nvidia.com/`` node labels that
describe a node's GPUs, and the writers that publish them.

Model (``view``: what the node has; ``settings``: how to run) → pure core (``labels`` and
``resource_labels``: labels as a function of the view, the device-plugin config, the machine
type and a timestamp) → thin adapters (``observe``: NVML and the machine-type file into a
view; ``writers``: the NFD feature file; ``kube_writers``: the ``NodeFeature`` object and direct
node labels; ``loop``: label, write, sleep, reload on SIGHUP).
"""
