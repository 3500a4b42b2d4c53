"""What runs in a VM from the host, one module each: our tests (pytest in the guest), the
kernel's selftests, KUnit, a whole run of them together, and bug reproductions (repro, bisect).

Each uses the VM's public interface (`harness.vm.machine.Vm`: `run(argv)`, `image`,
`build_record()`, `exchange_dir`, file copy) and never its state files.
"""
