# Bit operations on little-endian 64-bit words in a buffer (shared_info, vcpu_info). The host
# runs only between guest instructions, so each is atomic with respect to the guest.
import struct

_Q = struct.Struct("<Q")


def test_bit(buf, addr, bit):
    return (_Q.unpack_from(buf, addr)[0] >> bit) & 1


def test_and_set_bit(buf, addr, bit):
    w = _Q.unpack_from(buf, addr)[0]
    _Q.pack_into(buf, addr, w | (1 << bit))
    return (w >> bit) & 1


def test_and_clear_bit(buf, addr, bit):
    w = _Q.unpack_from(buf, addr)[0]
    _Q.pack_into(buf, addr, w & ~(1 << bit))
    return (w >> bit) & 1


def set_word(buf, addr, value):
    _Q.pack_into(buf, addr, value & 0xFFFFFFFFFFFFFFFF)


def get_word(buf, addr):
    return _Q.unpack_from(buf, addr)[0]
