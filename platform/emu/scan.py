# Find the instructions Unicorn 2.1.4 cannot trap (rdmsr, wrmsr, rdtsc, rdtscp) in guest code,
# so the vCPU can hook exactly their addresses instead of every instruction.
_KINDS = {"rdmsr": "rdmsr", "wrmsr": "wrmsr", "rdtsc": "rdtsc", "rdtscp": "rdtscp"}


def trapped_instructions(code, base):
    """Yield (address, kind, length) for each such instruction in a linear sweep of code.

    Capstone skips bytes it cannot decode and resumes at the next one, so data mixed with
    code costs at most a missed instruction, never a false hook on a non-instruction."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs

    md = Cs(CS_ARCH_X86, CS_MODE_64)
    md.skipdata = True
    for insn in md.disasm(code, base):
        kind = _KINDS.get(insn.mnemonic)
        if kind is not None:
            yield insn.address, kind, insn.size
