# PVH start of day: hvm_start_info (physical address in EBX at entry), module list, memory map.
# Ref: xen/include/public/arch-x86/hvm/start_info.h, docs/misc/pvh.pandoc
from .._compat import const

XEN_HVM_START_MAGIC_VALUE = const(0x336EC578)  # "xEn3" with the 0x80 bit of "E" set
# Current version of the structure; version 0 ends after rsdp_paddr (no memmap fields).
HVM_START_INFO_VERSION = const(1)

# struct hvm_start_info (56 bytes). Address fields of 0 mean "absent".
START_INFO_SIZE = const(56)
START_INFO_magic = const(0)  # u32
START_INFO_version = const(4)  # u32
START_INFO_flags = const(8)  # u32
START_INFO_nr_modules = const(12)  # u32
START_INFO_modlist_paddr = const(16)  # u64, hvm_modlist_entry[nr_modules]
START_INFO_cmdline_paddr = const(24)  # u64, NUL-terminated
START_INFO_rsdp_paddr = const(32)  # u64
START_INFO_memmap_paddr = const(40)  # u64, hvm_memmap_table_entry[memmap_entries]; v1+
START_INFO_memmap_entries = const(48)  # u32; v1+
START_INFO_reserved = const(52)  # u32

# struct hvm_modlist_entry (32 bytes)
MODLIST_ENTRY_SIZE = const(32)
MODLIST_ENTRY_paddr = const(0)  # u64
MODLIST_ENTRY_size = const(8)  # u64
MODLIST_ENTRY_cmdline_paddr = const(16)  # u64
MODLIST_ENTRY_reserved = const(24)  # u64

# struct hvm_memmap_table_entry (24 bytes)
MEMMAP_TABLE_ENTRY_SIZE = const(24)
MEMMAP_TABLE_ENTRY_addr = const(0)  # u64
MEMMAP_TABLE_ENTRY_size = const(8)  # u64
MEMMAP_TABLE_ENTRY_type = const(16)  # u32 (XEN_HVM_MEMMAP_TYPE_*)
MEMMAP_TABLE_ENTRY_reserved = const(20)  # u32

# hvm_memmap_table_entry.type
XEN_HVM_MEMMAP_TYPE_RAM = const(1)
XEN_HVM_MEMMAP_TYPE_RESERVED = const(2)
XEN_HVM_MEMMAP_TYPE_ACPI = const(3)
XEN_HVM_MEMMAP_TYPE_NVS = const(4)
XEN_HVM_MEMMAP_TYPE_UNUSABLE = const(5)
XEN_HVM_MEMMAP_TYPE_DISABLED = const(6)
XEN_HVM_MEMMAP_TYPE_PMEM = const(7)
