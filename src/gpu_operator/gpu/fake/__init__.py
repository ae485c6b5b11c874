"""The simulated NVML: a catalogue of real GPU models, node presets, shared node state,
and a pynvml stand-in."""
