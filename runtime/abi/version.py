# Version ABI: XENVER_* commands, XENFEAT_* feature bits, xen_feature_info.
# Ref: xen/include/public/version.h, xen/include/public/features.h
from .._compat import const

# xen_version(cmd, arg)
XENVER_version = const(0)  # arg NULL; returns major << 16 | minor
XENVER_extraversion = const(1)  # char[XEN_EXTRAVERSION_LEN]
XENVER_compile_info = const(2)
XENVER_capabilities = const(3)
XENVER_changeset = const(4)
XENVER_platform_parameters = const(5)
XENVER_get_features = const(6)  # struct xen_feature_info
XENVER_pagesize = const(7)
XENVER_guest_handle = const(8)
XENVER_commandline = const(9)
XENVER_build_id = const(10)
XENVER_extraversion2 = const(11)
XENVER_capabilities2 = const(12)
XENVER_changeset2 = const(13)
XENVER_commandline2 = const(14)

XEN_EXTRAVERSION_LEN = const(16)

# Feature bit numbers in submap 0.
XENFEAT_writable_page_tables = const(0)
XENFEAT_writable_descriptor_tables = const(1)
XENFEAT_auto_translated_physmap = const(2)
XENFEAT_supervisor_mode_kernel = const(3)
XENFEAT_pae_pgdir_above_4gb = const(4)
XENFEAT_mmu_pt_update_preserve_ad = const(5)
XENFEAT_highmem_assist = const(6)
XENFEAT_gnttab_map_avail_bits = const(7)
XENFEAT_hvm_callback_vector = const(8)
XENFEAT_hvm_safe_pvclock = const(9)
XENFEAT_hvm_pirqs = const(10)
XENFEAT_dom0 = const(11)
XENFEAT_grant_map_identity = const(12)
XENFEAT_memory_op_vnode_supported = const(13)
XENFEAT_ARM_SMCCC_supported = const(14)
XENFEAT_linux_rsdp_unrestricted = const(15)
XENFEAT_not_direct_mapped = const(16)
XENFEAT_direct_mapped = const(17)
XENFEAT_runstate_phys_area = const(18)
XENFEAT_vcpu_time_phys_area = const(19)
XENFEAT_dm_msix_all_writes = const(20)

# Submap 0 as Xen reports it to an x86 PVH domU (common/kernel.c): bits 0, 2, 8, 9, 13,
# 16, 18, 19, 20. Bit 10 (hvm_pirqs) is added only if the domain has PIRQs.
PVH_DOMU_FEATURES_0 = const(0x001D2305)

# struct xen_feature_info (8 bytes)
FEATURE_INFO_SIZE = const(8)
FEATURE_INFO_submap_idx = const(0)  # u32, IN
FEATURE_INFO_submap = const(4)  # u32, OUT
