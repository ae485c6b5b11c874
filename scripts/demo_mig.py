"""Part of `make demo`: partition a simulated H200 through the NVML facade, as the MIG manager
will, with explicit placements (largest first) and one full compute instance per GPU instance."""

from gpu_operator.gpu import Nvml

# (profile name, start) for all-balanced on a 7-way GPU: 3g at 4, 2g at 2, two 1g at 0 and 1.
LAYOUT = [("3g", 4), ("2g", 2), ("1g", 0), ("1g", 1)]

with Nvml.open() as nvml:
    mode, status = nvml.set_mig_mode(0, True)
    print(f"GPU 0: MIG mode {mode.current.value}" + (f" ({status})" if status else ""))
    profiles = {p.name.split(".")[0]: p for p in reversed(nvml.gi_profiles(0)) if "+" not in p.name}
    for prefix, start in LAYOUT:
        profile = profiles[prefix]
        gi = nvml.create_gpu_instance(0, profile.id, start)
        ci = nvml.create_compute_instance(0, gi.id)
        print(f"  created {gi.profile_name} at {start} (GI {gi.id}, CI {ci.id})")
