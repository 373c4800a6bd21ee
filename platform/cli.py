"""micropv: run Python guests on an emulated CPU against a Xen-faithful hypervisor stub."""
import argparse
import sys

from micropv import boards

from .emu.stop import EXIT_GUEST_ERROR


def _cmd_boards(args):
    for name in boards.names():
        b = boards.get(name)
        print(f"{b.name:<14} {b.arch:<8} {b.ram_size >> 20} MiB  callbacks: "
              f"{', '.join(b.callbacks)} (default {b.default_callback})")  # fmt: skip
        print(f"{'':<14} {b.description}")
    return 0


def _cmd_run(args):
    from .launch import parse_args, run_guest
    from .loader import is_elf

    def live(text):
        sys.stdout.write(text)
        sys.stdout.flush()

    options = {"callback": args.callback, "unmask": args.unmask, "handlers": args.handlers,
               "clear": args.clear}  # fmt: skip
    try:
        if is_elf(args.guest) or not args.guest.endswith(".py"):  # a kernel: native.py
            from .native import run_from_cli

            machine, result = run_from_cli(args, live)
        else:
            machine, result = run_guest(
                args.guest, board=args.board, options=options, args=parse_args(args.arg),
                seed=args.seed, budget_ns=args.max_virtual_ns, trace=bool(args.trace),
                console=live, stall_s=args.stall_s)  # fmt: skip
    except (ValueError, FileNotFoundError, SyntaxError, ImportError) as e:
        print(f"micropv: {e}", file=sys.stderr)
        return 2
    if args.trace:
        from .chrome_trace import write_chrome_trace

        write_chrome_trace(result.trace, args.trace, machine)
    out = result.outcome
    if out.kind != "shutdown" or result.status != 0:
        print(f"micropv: {out.message} (exit status {result.status}, "
              f"{result.virtual_ns} ns virtual)", file=sys.stderr)  # fmt: skip
        if out.report:
            print(out.report, file=sys.stderr)
    return result.status


def _cmd_bench(args):
    from . import bench

    return bench.main(args)


def _cmd_compare(args):
    from .compare import command

    return command.main(args)


def build_parser():
    p = argparse.ArgumentParser(prog="micropv", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a Python guest (a file defining main(rt)) or a PVH "
                       "kernel (an ELF file)")  # fmt: skip
    r.add_argument("guest")
    r.add_argument("--board", default="pvh-x86_64", help="board name (see `micropv boards`)")
    r.add_argument("--max-virtual-ns", type=int, default=60 * 10**9, metavar="N",
                   help="end the run with exit status 5 once virtual time passes N ns "
                        "(default 60 s)")  # fmt: skip
    r.add_argument("--callback", choices=("vector", "lapic", "gsi", "intx", "seip", "ssip"),
                   help="upcall method (default: the guest's OPTIONS, else the board's: "
                        "vector on pvh-x86_64, seip on sbi-riscv64)")
    r.add_argument("--unmask", choices=("hypercall-if-pending", "always-hypercall",
                                        "software-resend"), help="unmask algorithm")
    r.add_argument("--handlers", choices=("irq", "deferred"),
                   help="run event handlers in the upcall (irq) or a bottom half (deferred)")
    r.add_argument("--clear", choices=("first", "after"),
                   help="clear a port's pending bit before (first) or after its handler")
    r.add_argument("--seed", type=int, default=0, help="seed for the guest and its backend")
    r.add_argument("--stall-s", type=float, default=30.0, metavar="S",
                   help="end the run (status 5) if the guest's Python makes no machine call "
                        "for S wall seconds (default 30; 0 disables)")  # fmt: skip
    r.add_argument("--arg", action="append", metavar="KEY=VALUE",
                   help="a value for the guest (rt.config) and its backend; repeatable")
    r.add_argument("--cmdline", default="", metavar="TEXT",
                   help="a PVH kernel's command line (hvm_start_info.cmdline_paddr)")
    r.add_argument("--trace", metavar="OUT.json",
                   help="write a Chrome trace-event file (opens in Perfetto)")
    r.set_defaults(fn=_cmd_run)
    b = sub.add_parser("boards", help="list boards")
    b.set_defaults(fn=_cmd_boards)
    bn = sub.add_parser("bench", help="measure round-trip throughput")
    bn.add_argument("--json", metavar="F", help="also write the rows as JSON to F")
    bn.add_argument("--quick", action="store_true", help="fewer iterations (for tests)")
    bn.set_defaults(fn=_cmd_bench)
    # The compare command's options live with it (compare/command.py); importing that module
    # imports nothing heavy (rich and matplotlib only load when used).
    from .compare.command import add_parser

    add_parser(sub).set_defaults(fn=_cmd_compare)
    # The race explorer (explore/cli.py sets its own fn).
    from .explore.cli import add_parser as add_explore

    add_explore(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        return EXIT_GUEST_ERROR


if __name__ == "__main__":
    sys.exit(main())
