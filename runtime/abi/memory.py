# Memory ABI: XENMEM_* commands, physmap spaces, argument structs, e820 memory map.
# Ref: xen/include/public/memory.h; e820 entry as in xen/arch/x86/include/asm/e820.h
from .._compat import const

# memory_op(cmd, &arg)
XENMEM_increase_reservation = const(0)
XENMEM_decrease_reservation = const(1)
XENMEM_maximum_ram_page = const(2)
XENMEM_current_reservation = const(3)
XENMEM_maximum_reservation = const(4)
XENMEM_machphys_mfn_list = const(5)
XENMEM_populate_physmap = const(6)
XENMEM_add_to_physmap = const(7)
XENMEM_memory_map = const(9)
XENMEM_machine_memory_map = const(10)
XENMEM_exchange = const(11)
XENMEM_machphys_mapping = const(12)
XENMEM_set_memory_map = const(13)
XENMEM_maximum_gpfn = const(14)
XENMEM_remove_from_physmap = const(15)
XENMEM_add_to_physmap_batch = const(23)

# xen_add_to_physmap.space
XENMAPSPACE_shared_info = const(0)
XENMAPSPACE_grant_table = const(1)
XENMAPSPACE_gmfn = const(2)
XENMAPSPACE_gmfn_range = const(3)
XENMAPSPACE_gmfn_foreign = const(4)
XENMAPSPACE_dev_mmio = const(5)
# OR'd into idx with XENMAPSPACE_grant_table to map status frames.
XENMAPIDX_grant_table_status = const(0x80000000)

# struct xen_add_to_physmap (24 bytes). shared_info: domid=DOMID_SELF, space=0, idx=0.
ADD_TO_PHYSMAP_SIZE = const(24)
ADD_TO_PHYSMAP_domid = const(0)  # u16
ADD_TO_PHYSMAP_size = const(2)  # u16, XENMAPSPACE_gmfn_range only
ADD_TO_PHYSMAP_space = const(4)  # u32 (XENMAPSPACE_*)
ADD_TO_PHYSMAP_idx = const(8)  # xen_ulong (u64)
ADD_TO_PHYSMAP_gpfn = const(16)  # xen_pfn (u64), guest frame to map at

# struct xen_remove_from_physmap (16 bytes)
REMOVE_FROM_PHYSMAP_SIZE = const(16)
REMOVE_FROM_PHYSMAP_domid = const(0)  # u16
REMOVE_FROM_PHYSMAP_gpfn = const(8)  # xen_pfn (u64)

# XENMEM_current_reservation (and maximum_reservation) take a pointer to a domid_t.
DOMID_ARG_SIZE = const(2)
DOMID_ARG_domid = const(0)  # u16

# struct xen_memory_map (16 bytes), for XENMEM_memory_map
MEMORY_MAP_SIZE = const(16)
MEMORY_MAP_nr_entries = const(0)  # u32, IN: buffer capacity, OUT: entries written
MEMORY_MAP_buffer = const(8)  # guest handle (u64) to e820 entries

# e820 entry (20 bytes, packed)
E820_ENTRY_SIZE = const(20)
E820_ENTRY_addr = const(0)  # u64
E820_ENTRY_size = const(8)  # u64
E820_ENTRY_type = const(16)  # u32 (E820_*)

# e820 entry types
E820_RAM = const(1)
E820_RESERVED = const(2)
E820_ACPI = const(3)
E820_NVS = const(4)
E820_UNUSABLE = const(5)
