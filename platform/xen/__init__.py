# The hypervisor stub: a domain, its shared pages, timers and hypercalls, behaving as Xen does.
