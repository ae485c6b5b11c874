"""The sandbox: a whole simulated cluster on one machine (API server emulator, kubelet
stand-ins, simulated nodes)."""
