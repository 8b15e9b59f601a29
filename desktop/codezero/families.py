"""The task families of generated problems, by level: each draws its parameters and inputs from
the generator's RNG and returns a :class:`Task` with a reference implementation as source.

Changing a family, its parameters or its text changes the problems a seed yields: bump
``generator.GENERATOR_VERSION`` with it. No set iteration or hash() here: output must be the
same on every machine for the same RNG state.
"""

from __future__ import annotations

import random
import string
import textwrap
from dataclasses import dataclass
from typing import Callable

_AZ = string.ascii_lowercase


@dataclass(frozen=True)
class Task:
    name: str
    params: str
    returns: str
    description: str  # completes "Write ... that <description>."
    body: str  # function body, any indentation (dedented)
    cases: list[tuple]  # argument tuples; edge cases first, random ones after

    @property
    def signature(self) -> str:
        return f"def {self.name}({self.params}) -> {self.returns}:"

    @property
    def source(self) -> str:
        return f"{self.signature}\n{textwrap.indent(textwrap.dedent(self.body).strip(), '    ')}\n"


def _ints(r: random.Random, n: int, lo: int = -20, hi: int = 20) -> list[int]:
    return [r.randint(lo, hi) for _ in range(n)]


def _word(r: random.Random, lo: int = 1, hi: int = 8, alphabet: str = _AZ) -> str:
    return "".join(r.choice(alphabet) for _ in range(r.randint(lo, hi)))


def _plus(c: int) -> tuple[str, str]:
    """(' plus 3', ' + 3') or (' minus 3', ' - 3') so texts and code read naturally."""
    return (f" plus {c}", f" + {c}") if c >= 0 else (f" minus {-c}", f" - {-c}")


# --- level 0: arithmetic one-liners --------------------------------------------------------


def _affine(r):
    k, (say, code) = r.randint(2, 9), _plus(r.randint(-9, 9))
    cases = [(0,), (1,), (-1,)] + [(x,) for x in _ints(r, 4, -100, 100)]
    return Task("scale_shift", "x: int", "int", f"returns x multiplied by {k},{say}", f"return x * {k}{code}", cases)


def _product_form(r):
    a, b = r.randint(1, 9), r.randint(1, 9)
    cases = [(0,), (b,), (-a,)] + [(x,) for x in _ints(r, 4, -30, 30)]
    expr = f"(x + {a}) * (x - {b})"
    return Task("product_form", "x: int", "int", f"returns {expr}", f"return {expr}", cases)


def _division(r):
    k = r.randint(2, 12)
    name, ret, expr, desc = r.choice([
        ("div_quotient", "int", f"n // {k}", f"returns the quotient of the integer division of n by {k}"),
        ("div_remainder", "int", f"n % {k}", f"returns the remainder of the integer division of n by {k}"),
        ("is_multiple", "bool", f"n % {k} == 0", f"returns True if n is divisible by {k} and False otherwise"),
    ])
    cases = [(0,), (k,), (k - 1,), (3 * k,)] + [(x,) for x in _ints(r, 4, 0, 500)]
    return Task(name, "n: int", ret, desc + " (n is never negative)", f"return {expr}", cases)


def _extreme_plus(r):
    fn, word = r.choice([("max", "larger"), ("min", "smaller")])
    say, code = _plus(r.randint(1, 20))
    cases = [(3, 3), (-1, 1), (1, -1)] + [tuple(_ints(r, 2, -50, 50)) for _ in range(4)]
    desc = f"returns the {word} of a and b{say}"
    return Task(f"{word}_plus", "a: int, b: int", "int", desc, f"return {fn}(a, b){code}", cases)


# --- level 1: strings and list filters ------------------------------------------------------


def _keep_filter(r):
    t = r.randint(-5, 10)
    name, cond, what = r.choice([("keep_greater", f"x > {t}", f"greater than {t}"),
                                 ("keep_even", "x % 2 == 0", "even"), ("keep_odd", "x % 2 == 1", "odd")])
    cases = [([],), ([t, t + 1],)] + [(_ints(r, r.randint(3, 8), t - 10, t + 10),) for _ in range(4)]
    desc = f"returns a new list with the elements of nums that are {what}, in their original order"
    return Task(name, "nums: list[int]", "list[int]", desc, f"return [x for x in nums if {cond}]", cases)


def _remove_letter(r):
    c = r.choice("abcdef")
    cases = [("",), (c * 3,)] + [(_word(r, 0, 10, "abcdef"),) for _ in range(5)]
    desc = f"returns s with every occurrence of the letter '{c}' removed"
    return Task("remove_letter", "s: str", "str", desc, f"return s.replace({c!r}, '')", cases)


def _reverse_case(r):
    case = r.choice(["upper", "lower"])
    cases = [("",), ("a",)] + [(_word(r, 1, 10, "abcXYZ q"),) for _ in range(5)]
    desc = f"returns s reversed and converted to {case} case"
    return Task(f"reverse_{case}", "s: str", "str", desc, f"return s[::-1].{case}()", cases)


def _long_words(r):
    n = r.randint(2, 5)
    cases = [("",)] + [(" ".join(_word(r) for _ in range(r.randint(1, 6))),) for _ in range(5)]
    desc = (f"takes a sentence of words separated by single spaces and returns the list of words "
            f"that have more than {n} letters, in order")
    body = f"return [w for w in sentence.split() if len(w) > {n}]"
    return Task("long_words", "sentence: str", "list[str]", desc, body, cases)


def _sum_multiples(r):
    k = r.randint(2, 5)
    cases = [([],), ([k],)] + [(_ints(r, r.randint(3, 9)),) for _ in range(4)]
    desc = f"returns the sum of the elements of nums that are divisible by {k}"
    return Task("sum_multiples", "nums: list[int]", "int", desc, f"return sum(x for x in nums if x % {k} == 0)", cases)


# --- level 2: loops, counting, dictionaries -------------------------------------------------


def _letter_counts(r):
    body = "return {ch: s.count(ch) for ch in s if ch != ' '}"
    cases = [("",), ("aa a",)] + [(" ".join(_word(r, 1, 5, "abcd") for _ in range(3)),) for _ in range(4)]
    desc = "returns a dictionary mapping each character of s to the number of times it occurs; spaces are not counted"
    return Task("letter_counts", "s: str", "dict[str, int]", desc, body, cases)


def _most_frequent(r):
    body = "return min(nums, key=lambda x: (-nums.count(x), x))"
    cases = [([5],), ([2, 1],), ([3, 3, 1, 1],)] + [(_ints(r, r.randint(2, 10), 0, 5),) for _ in range(4)]
    desc = ("returns the value that occurs most often in the non-empty list nums; "
            "if several values tie, return the smallest of them")
    return Task("most_frequent", "nums: list[int]", "int", desc, body, cases)


def _fizz_words(r):
    a, b = r.sample(range(2, 8), 2)
    wa, wb = r.sample(["Fizz", "Buzz", "Bang", "Pop", "Zap"], 2)
    word = f"({wa!r} if i % {a} == 0 else '') + ({wb!r} if i % {b} == 0 else '')"
    body = f"return [{word} or str(i) for i in range(1, n + 1)]"
    cases = [(0,), (1,), (a * b,)] + [(r.randint(2, 25),) for _ in range(3)]
    desc = (f"returns a list of strings for the numbers 1 to n: a number divisible by both {a} and {b} becomes "
            f"'{wa}{wb}', one divisible only by {a} becomes '{wa}', one divisible only by {b} becomes '{wb}', "
            f"and any other number becomes its decimal string")
    return Task("fizz_words", "n: int", "list[str]", desc, body, cases)


def _group_by_first(r):
    body = """
        groups = {}
        for w in words:
            groups.setdefault(w[0], []).append(w)
        return groups
    """
    words = lambda: [r.choice("abc") + _word(r, 0, 4) for _ in range(r.randint(2, 7))]  # noqa: E731
    cases = [([],), (["a"],)] + [(words(),) for _ in range(4)]
    desc = ("takes a list of non-empty lowercase words and returns a dictionary mapping each first letter to "
            "the list of words starting with it, in their original order")
    return Task("group_by_first", "words: list[str]", "dict[str, list[str]]", desc, body, cases)


def _count_pairs(r):
    target = r.randint(0, 10)
    body = f"return sum(nums[i] + nums[j] == {target} for i in range(len(nums)) for j in range(i + 1, len(nums)))"
    cases = [([],), ([target],), ([target, 0, 0],)] + [(_ints(r, r.randint(3, 9), -2, 12),) for _ in range(4)]
    desc = f"returns how many pairs of positions i < j satisfy nums[i] + nums[j] == {target}"
    return Task("count_pairs", "nums: list[int]", "int", desc, body, cases)


# --- level 3: small algorithms --------------------------------------------------------------


def _rank_by_score(r):
    high = r.random() < 0.5
    key = "(-p[1], p[0])" if high else "(p[1], p[0])"
    names = ["ann", "bob", "cid", "dee", "eve", "fay", "gus"]
    cases = [([],), ([("ann", 3)],)]
    cases += [([(n, r.randint(0, 6)) for n in r.sample(names, r.randint(2, 6))],) for _ in range(4)]
    desc = (f"takes a list of (name, score) tuples and returns the names ordered by score from "
            f"{'highest to lowest' if high else 'lowest to highest'}; "
            f"names with equal scores are ordered alphabetically")
    body = f"return [name for name, _ in sorted(pairs, key=lambda p: {key})]"
    return Task("rank_by_score", "pairs: list[tuple[str, int]]", "list[str]", desc, body, cases)


def _running(r):
    name, fn, desc = r.choice([
        ("running_totals", "operator.add",
         "the running totals of nums: element i of the result is nums[0] + ... + nums[i]"),
        ("running_max", "max", "the running maximum of nums: element i of the result is the largest of nums[0..i]"),
    ])
    body = f"import itertools, operator\nreturn list(itertools.accumulate(nums, {fn}))"
    cases = [([],), ([-4],), ([-3, -5],)] + [(_ints(r, r.randint(3, 9)),) for _ in range(4)]
    return Task(name, "nums: list[int]", "list[int]", "returns " + desc, body, cases)


def _run_length(r):
    omit_one = r.random() < 0.5
    count = "('' if n == 1 else str(n))" if omit_one else "str(n)"
    body = f"""
        import itertools
        runs = [(ch, len(list(group))) for ch, group in itertools.groupby(s)]
        return ''.join(ch + {count} for ch, n in runs)
    """
    runs = lambda: "".join(r.choice("abc") * r.randint(1, 4) for _ in range(r.randint(1, 5)))  # noqa: E731
    cases = [("",), ("a",), ("x" * 12,)] + [(runs(),) for _ in range(4)]
    ones = ", except that a run of length 1 is the character alone (so 'aab' becomes 'a2b')"
    desc = ("compresses s with run-length encoding: each maximal run of one repeated character becomes the "
            "character followed by the run length" + (ones if omit_one else " (so 'aab' becomes 'a2b1')"))
    return Task("run_length", "s: str", "str", desc, body, cases)


def _digit_parity(r):
    if r.random() < 0.5:
        name, ret = "more_even_digits", "bool"
        desc = "returns True if the non-negative integer n has more even digits than odd digits, else False"
        body = """
            even = sum(1 for d in str(n) if int(d) % 2 == 0)
            return even > len(str(n)) - even
        """
    else:
        name, ret = "even_minus_odd", "int"
        desc = "returns the sum of the even digits of the non-negative integer n minus the sum of its odd digits"
        body = """
            digits = [int(d) for d in str(n)]
            return sum(d for d in digits if d % 2 == 0) - sum(d for d in digits if d % 2 == 1)
        """
    cases = [(0,), (7,), (10,), (2468,)] + [(r.randint(0, 10 ** r.randint(2, 7)),) for _ in range(4)]
    return Task(name, "n: int", ret, desc, body, cases)


def _best_window(r):
    k = r.randint(2, 4)
    body = f"return max((sum(nums[i:i + {k}]) for i in range(len(nums) - {k} + 1)), default=None)"
    cases = [([],), ([1] * (k - 1),), ([-1] * k,)] + [(_ints(r, r.randint(k, 10)),) for _ in range(4)]
    desc = f"returns the largest sum of {k} consecutive elements of nums, or None if nums has fewer than {k} elements"
    return Task("best_window", "nums: list[int]", "int | None", desc, body, cases)


# --- level 4: harder algorithms -------------------------------------------------------------


def _longest_increasing(r):
    strict = r.random() < 0.5
    body = f"""
        best = [1] * len(nums)
        for i in range(len(nums)):
            for j in range(i):
                if nums[j] {'<' if strict else '<='} nums[i]:
                    best[i] = max(best[i], best[j] + 1)
        return max(best, default=0)
    """
    cases = [([],), ([5],), ([3, 3, 3],), ([5, 4, 3],)] + [(_ints(r, r.randint(5, 12), 0, 9),) for _ in range(4)]
    desc = (f"returns the length of the longest {'strictly increasing' if strict else 'non-decreasing'} "
            f"subsequence of nums (its elements need not be adjacent in nums)")
    return Task("longest_increasing", "nums: list[int]", "int", desc, body, cases)


def _balanced(r, pairs: list[str], depth: int = 0) -> str:
    out = ""
    for _ in range(r.randint(1, 3)):
        pair = r.choice(pairs)
        inner = _balanced(r, pairs, depth + 1) if depth < 2 and r.random() < 0.6 else ""
        out += pair[0] + inner + pair[1]
    return out


def _brackets(r):
    pairs = sorted(r.sample(["()", "[]", "{}", "<>"], r.randint(2, 4)))
    opens, closes = "".join(p[0] for p in pairs), "".join(p[1] for p in pairs)
    body = f"""
        match = dict(zip({closes!r}, {opens!r}))
        stack = []
        for ch in s:
            if ch in {opens!r}:
                stack.append(ch)
            elif ch in {closes!r}:
                if not stack or stack.pop() != match[ch]:
                    return False
        return not stack
    """
    cases = [("",), (opens[0],), (closes[0] + opens[0],), (opens[0] + closes[1],)]
    for _ in range(5):
        s = list(_balanced(r, pairs))
        if r.random() < 0.5:  # break it (usually): drop or retype one character
            i = r.randrange(len(s))
            s[i:i + 1] = r.choice(["", r.choice(opens + closes)])
        if r.random() < 0.4:  # characters outside the chosen pairs must be ignored
            s.insert(r.randint(0, len(s)), r.choice("ax|"))
        cases.append(("".join(s),))
    desc = (f"returns True if the brackets in s are correctly matched and nested, using the bracket pairs "
            f"{', '.join(pairs)}; any other character is ignored")
    return Task("balanced", "s: str", "bool", desc, body, cases)


def _intervals(r):
    covered = r.random() < 0.5
    body = f"""
        merged = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return {'sum(end - start for start, end in merged)' if covered else 'merged'}
    """

    def some():
        return [[s, s + r.randint(0, 6)] for s in _ints(r, r.randint(2, 6), 0, 20)]

    cases = [([],), ([[1, 3]],), ([[4, 6], [1, 2], [2, 3]],)] + [(some(),) for _ in range(4)]
    what = ("the total length covered by their union (an interval [s, e] has length e - s)" if covered
            else "the list of merged intervals sorted by start")
    desc = (f"takes a list of [start, end] intervals (start <= end, in any order), merges intervals that overlap "
            f"or touch (share an endpoint), and returns {what}")
    return Task("covered_length" if covered else "merge_intervals", "intervals: list[list[int]]",
                 "int" if covered else "list[list[int]]", desc, body, cases)


def _edit_distance(r):
    subst = r.random() < 0.5
    body = f"""
        prev = list(range(len(b) + 1))
        for i in range(1, len(a) + 1):
            cur = [i] + [0] * len(b)
            for j in range(1, len(b) + 1):
                if a[i - 1] == b[j - 1]:
                    cur[j] = prev[j - 1]
                else:
                    cur[j] = 1 + min(prev[j], cur[j - 1]{', prev[j - 1]' if subst else ''})
            prev = cur
        return prev[len(b)]
    """
    cases = [("", ""), ("", "abc"), ("abc", "abc"), ("ab", "ba")]
    cases += [(_word(r, 0, 7, "abcd"), _word(r, 0, 7, "abcd")) for _ in range(4)]
    ops = "insertions, deletions and substitutions" if subst else "insertions and deletions (no substitutions)"
    desc = f"returns the minimum number of single-character {ops} needed to turn string a into string b"
    return Task("edit_distance", "a: str, b: str", "int", desc, body, cases)


def _min_coins(r):
    coins = sorted(r.sample(range(2, 12), r.randint(2, 3)))
    body = f"""
        best = [0] + [-1] * amount
        for total in range(1, amount + 1):
            options = [best[total - c] for c in {coins} if c <= total and best[total - c] >= 0]
            if options:
                best[total] = min(options) + 1
        return best[amount]
    """
    cases = [(0,), (1,), (coins[0],), (coins[0] + coins[-1],)] + [(r.randint(2, 60),) for _ in range(4)]
    desc = (f"returns the minimum number of coins with values {coins} (unlimited supply of each) that add up "
            f"exactly to amount, or -1 if that is impossible")
    return Task("min_coins", "amount: int", "int", desc, body, cases)


def _longest_window(r):
    k = r.randint(1, 3)  # 1 distinct char = longest run; the family is "at most k distinct"
    # brute force over all substrings: slow but evidently right, and inputs are short
    spans = "for i in range(len(s)) for j in range(i + 1, len(s) + 1)"
    body = f"return max((j - i {spans} if len(set(s[i:j])) <= {k}), default=0)"
    cases = [("",), ("a",), ("abcabc",)] + [(_word(r, 4, 14, "abcd"),) for _ in range(5)]
    desc = (f"returns the length of the longest contiguous substring of s "
            f"with at most {k} distinct character{'s' * (k > 1)}")
    return Task("longest_window", "s: str", "int", desc, body, cases)


FAMILIES: list[list[Callable[[random.Random], Task]]] = [
    [_affine, _product_form, _division, _extreme_plus],
    [_keep_filter, _remove_letter, _reverse_case, _long_words, _sum_multiples],
    [_letter_counts, _most_frequent, _fizz_words, _group_by_first, _count_pairs],
    [_rank_by_score, _running, _run_length, _digit_parity, _best_window],
    [_longest_increasing, _brackets, _intervals, _edit_distance, _min_coins, _longest_window],
]
