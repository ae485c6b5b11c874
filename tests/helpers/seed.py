"""The seed's nine `--set` lines (issue 14), as `helm` argv, for the tests that render or
install the chart with them (the e2e tests type the whole command line instead)."""

SEED_SET_ARGS = [
    "--set", "mig.strategy=mixed", "--set", "driver.repository=homelab.net/nvcr.io/nvidia",
    "--set", "driver.version=450.156.00", "--set", "driver.manager.version=v0.2.0-ubi8",
    "--set", "toolkit.version=1.7.2-ubi8", "--set", "dcgm.version=2.3.1-ubi8",
    "--set", "operator.version=v1.9.0-ubi8",
    "--set", "operator.initContainer.version=cuda:11.2.1-base-ubi8",
    "--set", "validator.version=v1.9.0-ubi8",
]  # fmt: skip
