"""Random tokens come from urandom read in blocks: right sizes, no repeats, and a forked
child never hands out its parent's tokens."""

import os
import re

from sipws.core import tokens
from sipws.core.message import new_branch, new_tag


def test_tokens_have_the_asked_size_and_alphabet():
    assert re.fullmatch(r"[0-9a-f]{12}", tokens.token_hex(6))
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", tokens.token_urlsafe(12))
    assert re.fullmatch(r"[0-9a-f]{12}", new_tag())
    assert re.fullmatch(r"z9hG4bK[0-9a-f]{16}", new_branch())


def test_tokens_do_not_repeat_across_many_blocks():
    drawn = [tokens.token_hex(8) for _ in range(20_000)]  # 160 KB: about 40 blocks
    assert len(set(drawn)) == len(drawn)


def test_a_token_bigger_than_a_block_is_served_whole():
    assert len(tokens.token_hex(tokens.BLOCK + 1)) == 2 * (tokens.BLOCK + 1)


def test_a_forked_child_does_not_repeat_its_parents_tokens():
    tokens.token_hex(8)  # the parent now holds a partly used block
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next token, to the parent
        os.close(read_end)
        os.write(write_end, tokens.token_hex(8).encode())
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(child, 0)
    childs = os.read(read_end, 64).decode()
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(childs) == 16
    assert childs != tokens.token_hex(8)
