"""`python -m irisvue.crypto generate-master-key [--id ID]`: print a new master key."""

from __future__ import annotations

import argparse

from irisvue.config import ConfigError
from irisvue.crypto.keys import MasterKeyring, generate_master_key


def main(argv: list[str] | None = None) -> int:
    """`python -m irisvue.crypto generate-master-key [--id ID]`."""
    parser = argparse.ArgumentParser(prog="python -m irisvue.crypto")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate-master-key", help="print a new master key")
    generate.add_argument("--id", help="print a full MASTER_KEYS entry `ID:material`")
    args = parser.parse_args(argv)
    material = generate_master_key()
    if args.id is not None:
        try:
            MasterKeyring.from_config([(args.id, material)])
        except ConfigError as exc:
            parser.error(str(exc))
        material = f"{args.id}:{material}"
    print(material)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
