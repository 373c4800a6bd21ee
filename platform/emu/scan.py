# Find the instructions Unicorn 2.1.4 cannot trap (rdmsr, wrmsr, rdtsc, rdtscp) in guest code,
# so the vCPU can hook exactly their addresses instead of every instruction.
_KINDS = {"rdmsr": "rdmsr", "wrmsr": "wrmsr", "rdtsc": "rdtsc", "rdtscp": "rdtscp"}
# Their encodings: 0f 30 wrmsr, 0f 31 rdtsc, 0f 32 rdmsr, 0f 01 f9 rdtscp. Code without any of
# these byte pairs has nothing to hook, whatever its instruction boundaries.
_OPCODES = (b"\x0f\x30", b"\x0f\x31", b"\x0f\x32", b"\x0f\x01\xf9")


def trapped_instructions(code, base, mode=64):
    """Yield (address, kind, length) for each such instruction in a linear sweep of code,
    decoded as mode-bit (64 or 32) code.

    Capstone skips bytes it cannot decode and resumes at the next one, so data mixed with
    code costs at most a missed instruction, never a false hook on a non-instruction."""
    code = bytes(code)
    if not any(op in code for op in _OPCODES):
        return
    from capstone import CS_ARCH_X86, CS_MODE_32, CS_MODE_64, Cs

    md = Cs(CS_ARCH_X86, CS_MODE_32 if mode == 32 else CS_MODE_64)
    md.skipdata = True
    for address, size, mnemonic, _ in md.disasm_lite(code, base):
        kind = _KINDS.get(mnemonic)
        if kind is not None:
            yield address, kind, size
