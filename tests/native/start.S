/* PVH entry of micropv's test kernel: the XEN_ELFNOTE_PHYS32_ENTRY note, the 32-bit entry
 * (records the entry state for kernel.c to check, makes one hypercall in 32-bit mode, builds
 * page tables, enters long mode), the interrupt entry stubs and the hypercall page.
 * Assembled by the tests with the system gcc; see tests/platform/test_native.py. */

#define MSR_EFER        0xC0000080
#define EFER_LME        (1 << 8)
#define EFER_NXE        (1 << 11)
#define CR0_PG_WP       0x80010000
#define CR4_PAE         0x20

        .section .note.Xen, "a", @note
        .align 4
        .long 4, 4, 18                  /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .align 4
        .long _start32

        .section .text.boot, "ax"
        .code32
        .globl _start32
_start32:
        /* What the PVH contract promises, as this CPU shows it: checked in C later. */
        mov %ebx, entry_ebx
        mov %cr0, %eax
        mov %eax, entry_cr0
        mov %cr4, %eax
        mov %eax, entry_cr4
        mov $boot_stack_top, %esp
        pushf
        pop %eax
        mov %eax, entry_eflags
        mov %cs, %ax
        mov %ax, entry_cs
        str %ax
        mov %ax, entry_tr
        mov $MSR_EFER, %ecx
        rdmsr
        mov %eax, entry_efer

        /* "triple32" on the command line: fault here, with no IDT at all. */
        mov entry_ebx, %ebx
        mov 24(%ebx), %eax              /* hvm_start_info.cmdline_paddr (low half) */
        test %eax, %eax
        jz 1f
        cmpl $0x70697274, (%eax)        /* "trip" */
        jne 1f
        cmpl $0x3233656c, 4(%eax)       /* "le32" */
        jne 1f
        ud2
1:
        /* "idt32": a #UD taken through a 32-bit IDT of our own, before long mode. */
        test %eax, %eax
        jz 1f
        cmpl $0x33746469, (%eax)        /* "idt3" */
        jne 1f
        cmpb $0x32, 4(%eax)             /* "2" */
        jne 1f
        mov $isr32_ud, %edx             /* gate 6: a 32-bit interrupt gate, our CS */
        mov %edx, %ecx
        and $0xFFFF, %edx
        xor %eax, %eax
        mov %cs, %ax
        shl $16, %eax
        or %eax, %edx
        mov %edx, idt32 + 6 * 8
        and $0xFFFF0000, %ecx
        or $0x8E00, %ecx
        mov %ecx, idt32 + 6 * 8 + 4
        lidt idt32_ptr
        ud2                             /* the handler skips it */
        mov entry_ebx, %ebx
1:
        /* A hypercall from 32-bit code: console_io(CONSOLEIO_write, len, msg) in ebx, ecx,
         * edx, with no hypercall page yet (vmcall directly, as the page would). */
        mov $18, %eax
        xor %ebx, %ebx
        mov $msg32_end - msg32, %ecx
        mov $msg32, %edx
        vmcall
        mov %eax, entry_hc32

        /* Page tables: the first GiB identity-mapped with 2 MiB pages; at 1 GiB one
         * read-only 2 MiB page (onto physical 0) for the #PF tests; the local APIC page. */
        mov $pd0, %edi
        xor %ecx, %ecx
2:      mov %ecx, %eax
        shl $21, %eax
        or $0x83, %eax                  /* present, writable, 2 MiB */
        mov %eax, (%edi,%ecx,8)
        movl $0, 4(%edi,%ecx,8)
        inc %ecx
        cmp $512, %ecx
        jne 2b
        movl $0x81, pd1                 /* present, read-only, 2 MiB, physical 0 */
        movl $0xFEE0009B, pd3 + 8 * 0x1F7 /* LAPIC: present, writable, PWT, PCD, 2 MiB */
        movl $pd0 + 3, pdpt
        movl $pd1 + 3, pdpt + 8
        movl $pd3 + 3, pdpt + 24
        movl $pdpt + 3, pml4

        mov %cr4, %eax
        or $CR4_PAE, %eax
        mov %eax, %cr4
        mov $pml4, %eax
        mov %eax, %cr3
        mov $MSR_EFER, %ecx
        rdmsr
        or $(EFER_LME | EFER_NXE), %eax
        wrmsr
        mov %cr0, %eax
        or $CR0_PG_WP, %eax
        mov %eax, %cr0
        lgdt gdt_ptr
        ljmp $0x08, $start64

        .code64
start64:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        mov $boot_stack_top, %rsp
        mov entry_ebx(%rip), %edi       /* kmain(start_info) */
        call kmain
        mov %eax, %edi
        call kexit                      /* does not return */
3:      hlt
        jmp 3b

        .code32
isr32_ud:                               /* frame: EIP, CS, EFLAGS (no error code for #UD) */
        addl $2, (%esp)
        incl entry_idt32
        iret
        .code64

/* Interrupt entry: vector v's stub is at isr_stubs + 16 * v. Vectors whose exceptions push
 * an error code get none pushed here; the others push 0, so every frame looks the same. */
        .altmacro
        .macro isr v
        .align 16
        .if (\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
        .else
        pushq $0
        .endif
        pushq $\v
        jmp isr_common
        .endm

        .text
        .align 16
        .globl isr_stubs
isr_stubs:
        .set vec, 0
        .rept 256
        isr %vec
        .set vec, vec + 1
        .endr

isr_common:
        push %rax
        push %rbx
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %rbp
        push %r8
        push %r9
        push %r10
        push %r11
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rsp, %rdi
        cld
        call trap_handler
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rbp
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rbx
        pop %rax
        add $16, %rsp                   /* vector, error code */
        iretq

/* The hypercall page: RETs until the host fills it during the wrmsr (kernel.c checks). */
        .align 4096
        .globl hypercall_page
hypercall_page:
        .fill 4096, 1, 0xc3

        .section .rodata
msg32:  .ascii "start32: a hypercall from 32-bit protected mode\n"
msg32_end:
        .align 8
gdt:    .quad 0, 0x00209A0000000000, 0x0000920000000000
gdt_ptr:
        .word gdt_ptr - gdt - 1
        .long gdt
idt32_ptr:
        .word 7 * 8 - 1
        .long idt32

        .data
        .globl entry_ebx, entry_cr0, entry_cr4, entry_eflags, entry_efer, entry_cs, entry_tr
        .globl entry_hc32, entry_idt32
entry_ebx:      .long 0
entry_cr0:      .long 0
entry_cr4:      .long 0
entry_eflags:   .long 0
entry_efer:     .long 0
entry_hc32:     .long 0
entry_idt32:    .long 0
entry_cs:       .word 0
entry_tr:       .word 0

        .bss
        .align 8
idt32:  .skip 7 * 8
        .align 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd0:    .skip 4096
pd1:    .skip 4096
pd3:    .skip 4096
        .skip 16384
boot_stack_top:

        .section .note.GNU-stack, "", @progbits
