# Xen and SBI public ABI as data: numbers and struct layouts, no behaviour.
# The host imports these same files, so guest and hypervisor agree by construction.
