"""Formal English given names and the short or informal forms people are recorded under.

Each group is one formal name with its common variants; two names are nicknames of each
other when they share a group. Kept small and readable on purpose: a reviewer can check
why "Peggy" was taken for "Margaret". Extend it by adding groups.
"""

from __future__ import annotations

from collections import defaultdict

_GROUPS: tuple[tuple[str, ...], ...] = (
    ("albert", "bert", "bertie", "al"),
    ("alexander", "alex", "alec", "sandy", "xander"),
    ("alexandra", "alex", "sandra", "sandy", "lexi"),
    ("alfred", "alf", "alfie", "fred"),
    ("andrew", "andy", "drew"),
    ("anthony", "tony", "ant"),
    ("arthur", "art", "artie"),
    ("barbara", "babs", "barbie", "barb"),
    ("benjamin", "ben", "benny"),
    ("bernard", "bernie"),
    ("catherine", "kate", "cathy", "kath", "katie", "cath"),
    ("katherine", "kate", "kathy", "kath", "katie", "kay"),
    ("charles", "charlie", "chas", "chuck"),
    ("christine", "chris", "chrissie", "tina"),
    ("christopher", "chris", "kit"),
    ("daniel", "dan", "danny"),
    ("david", "dave", "davy"),
    ("deborah", "debbie", "deb", "debs"),
    ("dennis", "den"),
    ("donald", "don", "donny"),
    ("dorothy", "dot", "dolly", "dottie", "dora"),
    ("douglas", "doug", "dougie"),
    ("edward", "ted", "eddie", "ed", "ned", "teddy"),
    ("edwin", "ed", "eddie"),
    ("eleanor", "ellie", "nell", "nora"),
    ("elizabeth", "liz", "beth", "betty", "lizzie", "eliza", "bess", "libby", "lisa"),
    ("florence", "flo", "florrie"),
    ("frances", "fran", "fanny"),
    ("francis", "frank", "fran"),
    ("frederick", "fred", "freddie", "freddy"),
    ("gerald", "gerry", "ged"),
    ("geoffrey", "geoff", "jeff"),
    ("gwendoline", "gwen", "wendy"),
    ("harold", "harry", "hal"),
    ("henry", "harry", "hal", "hank"),
    ("jacqueline", "jackie", "jacqui"),
    ("james", "jim", "jimmy", "jamie"),
    ("jean", "jeannie"),
    ("jennifer", "jenny", "jen", "jenni"),
    ("john", "jack", "johnny", "jon"),
    ("jonathan", "jon", "jonny"),
    ("joseph", "joe", "joey"),
    ("josephine", "jo", "josie"),
    ("joanne", "jo"),
    ("kathleen", "kath", "kathy", "kay"),
    ("kenneth", "ken", "kenny"),
    ("lawrence", "larry", "laurie"),
    ("leonard", "len", "lenny", "leo"),
    ("margaret", "peggy", "maggie", "meg", "madge", "marge", "peg", "rita"),
    ("mary", "molly", "polly", "mae"),
    ("matthew", "matt", "matty"),
    ("michael", "mike", "mick", "mickey", "mikey"),
    ("nicholas", "nick", "nicky"),
    ("nicola", "nicky", "nikki"),
    ("pamela", "pam"),
    ("patricia", "pat", "trish", "patsy", "tricia"),
    ("patrick", "pat", "paddy"),
    ("peter", "pete"),
    ("philip", "phil", "pip"),
    ("phillip", "phil"),
    ("rebecca", "becky", "becca", "bex"),
    ("richard", "dick", "rich", "rick", "ricky", "richie"),
    ("robert", "bob", "rob", "bobby", "robbie", "bert"),
    ("ronald", "ron", "ronnie"),
    ("samuel", "sam", "sammy"),
    ("samantha", "sam", "sammy"),
    ("sandra", "sandy", "sandie"),
    ("stanley", "stan"),
    ("stephen", "steve", "stevie"),
    ("steven", "steve", "stevie"),
    ("susan", "sue", "susie", "suzy"),
    ("suzanne", "sue", "suzy"),
    ("terence", "terry", "tel"),
    ("theodore", "ted", "theo", "teddy"),
    ("thomas", "tom", "tommy"),
    ("timothy", "tim", "timmy"),
    ("valerie", "val"),
    ("victoria", "vicky", "vikki", "tori"),
    ("walter", "wally", "walt"),
    ("william", "bill", "will", "billy", "willie", "liam"),
    ("winifred", "winnie", "freda"),
)


def _index() -> dict[str, frozenset[int]]:
    found: defaultdict[str, set[int]] = defaultdict(set)
    for n, group in enumerate(_GROUPS):
        for name in group:
            found[name].add(n)
    return {name: frozenset(groups) for name, groups in found.items()}


_GROUP_OF = _index()


def are_nicknames(a: str, b: str) -> bool:
    """Say whether two different normalised given names are forms of one name."""
    if a == b:
        return False
    return bool(_GROUP_OF.get(a, frozenset()) & _GROUP_OF.get(b, frozenset()))
