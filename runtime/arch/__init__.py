# Per-architecture code stubs the runtime writes into guest memory.
