"""The words the rule-based parser understands, mapped onto catalog terms.

Patterns are regex fragments over the normalized (case-folded) query. Order inside a table does not
matter: `PhraseTable` always prefers the longest match, so "romantic comedy" beats "romantic" and
"action-packed" beats "action" wherever they overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from media_gateway.catalog.schemas import ContentKind, Monetization

T = TypeVar("T")

# Hyphens and spaces are interchangeable in what people type ("sci fi", "sci-fi", "feel good").
_SEP = r"[\s-]*"
_SEP1 = r"[\s-]+"


@dataclass(frozen=True)
class Concept:
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    kind: ContentKind | None = None


@dataclass(frozen=True)
class Found(Generic[T]):
    start: int
    end: int
    value: T


class PhraseTable(Generic[T]):
    """Whole-word phrase lookup with leftmost-longest, non-overlapping matching."""

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._entries = [
            (re.compile(rf"(?<![\w+']){pattern.replace(' ', _SEP1)}(?![\w+])"), value)
            for pattern, value in entries
        ]

    def find(self, text: str) -> list[Found[T]]:
        candidates = [
            Found(m.start(), m.end(), value)
            for regex, value in self._entries
            for m in regex.finditer(text)
            if m.end() > m.start()
        ]
        # Longest first, then leftmost; a candidate overlapping one already taken loses.
        candidates.sort(key=lambda f: (f.start - f.end, f.start))
        taken: list[Found[T]] = []
        for candidate in candidates:
            if all(candidate.end <= t.start or candidate.start >= t.end for t in taken):
                taken.append(candidate)
        return sorted(taken, key=lambda f: f.start)

    def values(self, text: str) -> Iterator[T]:
        return (found.value for found in self.find(text))


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _c(
    pattern: str,
    genres: tuple[str, ...] = (),
    moods: tuple[str, ...] = (),
    themes: tuple[str, ...] = (),
    kind: ContentKind | None = None,
) -> tuple[str, Concept]:
    return pattern, Concept(genres, moods, themes, kind)


SF = "Science Fiction"
SERIES = ContentKind.SERIES
MOVIE = ContentKind.MOVIE

CONCEPTS: Final = PhraseTable(
    [
        # -- genres (with the moods and themes their words imply)
        _c(rf"sci{_SEP}fi|science fiction", (SF,)),
        _c(r"space operas?", (SF, "Adventure"), themes=("space",)),
        _c(r"cyberpunk", (SF,), themes=("cyberpunk",)),
        _c(r"dystopian?|dystopias?", (SF,), themes=("dystopia",)),
        _c(rf"post{_SEP}apocalyptic|apocalyptic|apocalypse", (SF,), themes=("post-apocalyptic",)),
        _c(rf"rom{_SEP}coms?|romantic comed(?:y|ies)", ("Romance", "Comedy")),
        _c(r"(?:dark|black) comed(?:y|ies)", ("Comedy",), ("dark",)),
        _c(r"comed(?:y|ies)|comedic", ("Comedy",)),
        _c(rf"stand{_SEP}up(?: comedy| specials?)?", ("Comedy",), themes=("stand-up",)),
        _c(r"sitcoms?", ("Comedy",), kind=SERIES),
        _c(r"true crime", ("Crime", "Documentary"), themes=("true crime",)),
        _c(r"crimes?|gangsters?|mafia|mobsters?", ("Crime",)),
        _c(r"heists?|robbery|bank robbers?", ("Crime",), themes=("heist",)),
        _c(r"serial killers?", ("Crime", "Thriller"), themes=("serial killer",)),
        _c(rf"(?:film|neo){_SEP}noir|noir", ("Crime",), ("dark",)),
        _c(r"whodunn?its?|murder myster(?:y|ies)", ("Mystery", "Crime"), themes=("detective",)),
        _c(r"myster(?:y|ies)|detectives?", ("Mystery",)),
        _c(r"psychological thrillers?", ("Thriller",), ("mind-bending",)),
        _c(r"political thrillers?", ("Thriller",), themes=("politics",)),
        _c(r"thrillers?", ("Thriller",)),
        _c(r"spy|spies|espionage", ("Thriller",), themes=("espionage",)),
        _c(r"horrors?", ("Horror",)),
        _c(r"slashers?", ("Horror",), themes=("slasher",)),
        _c(r"zombies?", ("Horror",), themes=("zombies",)),
        _c(r"animated|animations?|cartoons?|claymation|pixar", ("Animation",)),
        _c(r"animes?", ("Animation",), themes=("anime",)),
        _c(rf"documentar(?:y|ies)|docs?|docos?|non{_SEP}fiction", ("Documentary",)),
        _c(rf"docu{_SEP}series", ("Documentary",), kind=SERIES),
        _c(r"nature documentar(?:y|ies)|wildlife", ("Documentary",), themes=("nature",)),
        _c(r"dramas?|dramatic", ("Drama",)),
        _c(r"period (?:pieces?|dramas?)|costume dramas?", ("Drama", "History")),
        _c(r"histor(?:y|ical)|biopics?|biographical", ("History",)),
        _c(r"romances?|love stor(?:y|ies)", ("Romance",), ("romantic",)),
        _c(r"action", ("Action",)),
        _c(rf"action{_SEP}packed", ("Action",), ("exciting",)),
        _c(rf"super{_SEP}hero(?:es)?|marvel", ("Action",), themes=("superheroes",)),
        _c(r"martial arts?|kung fu", ("Action",), themes=("martial arts",)),
        _c(r"adventures?|adventurous", ("Adventure",)),
        _c(r"fantas(?:y|ies)|fantastical", ("Fantasy",)),
        _c(
            rf"family|kids|children|for the (?:whole )?family|(?:family|kid){_SEP}friendly",
            ("Family",),
        ),
        _c(r"musicals?|music|concerts?", ("Music",)),
        _c(r"sports?|sporting", ("Sport",)),
        _c(r"war", ("War",)),
        _c(r"world war (?:ii|2|two)|wwii|ww2", ("War", "History"), themes=("world war ii",)),
        _c(r"westerns?|cowboys?", ("Western",)),
        _c(r"reality(?: tv| shows?| series)?|game shows?", ("Reality",), kind=SERIES),
        _c(r"talk shows?|late night", ("Talk",), kind=SERIES),
        _c(r"news", ("News",)),
        # -- moods
        _c(r"dark(?:er|est)?|gritty|grittier|bleak|grim|brooding|disturbing|twisted", moods=("dark",)),
        _c(
            rf"feel{_SEP}good|heart{_SEP}warming|wholesome|cozy|cosy|comfort(?:ing)?|charming",
            moods=("feel-good",),
        ),
        _c(
            rf"funny|funnier|funniest|hilarious|humou?rous|witty|silly|goofy|light{_SEP}hearted|laughs?",
            moods=("funny",),
        ),
        _c(
            rf"tense|suspense(?:ful)?|gripping|nail{_SEP}biting|intense|claustrophobic"
            r"|edge of (?:my|your|the) seat",
            moods=("tense",),
        ),
        _c(r"romantic|swoon(?:y|worthy)?", moods=("romantic",)),
        _c(
            rf"uplifting|inspiring|inspirational|hopeful|motivational|optimistic|life{_SEP}affirming",
            moods=("uplifting",),
        ),
        _c(
            r"scary|scarier|scariest|terrifying|creepy|creepier|spooky|frightening|chilling|horrifying",
            moods=("scary",),
        ),
        _c(
            rf"mind{_SEP}(?:bending|blowing|benders?)|trippy|twisty|plot twists?|twist endings?"
            r"|surreal|puzzling|complex",
            moods=("mind-bending",),
        ),
        _c(
            rf"sad|sadder|tear{_SEP}jerkers?|emotional|heart{_SEP}breaking|melanchol(?:y|ic)|depressing"
            r"|tragic|make me cry",
            moods=("sad",),
        ),
        _c(
            rf"relaxing|chill|calm|easy watch(?:ing)?|laid{_SEP}back|low{_SEP}key|soothing|mellow",
            moods=("relaxing",),
        ),
        _c(rf"exciting|thrilling|adrenaline|fast{_SEP}paced|high{_SEP}octane", moods=("exciting",)),
        _c(
            rf"thought{_SEP}provoking|cerebral|philosophical|smart|intelligent|clever|profound",
            moods=("thought-provoking",),
        ),
        _c(r"quirky|weird|offbeat|odd|bizarre|eccentric|absurd|whimsical|strange", moods=("quirky",)),
        _c(r"epic|sweeping|grand|larger than life", moods=("epic",)),
        _c(r"nostalgic|nostalgia|retro|throwback", moods=("nostalgic",)),
        _c(r"violent|gory|gore|bloody|brutal", moods=("violent",)),
        # -- themes
        _c(r"time travel(?:l?ing)?", themes=("time travel",)),
        _c(r"time loops?", themes=("time loop",)),
        _c(rf"aliens?|extra{_SEP}terrestrials?|first contact|ufos?", themes=("aliens",)),
        _c(r"(?:outer )?space|astronauts?|spaceships?", themes=("space",)),
        _c(r"robots?|androids?|artificial intelligence", themes=("artificial intelligence",)),
        _c(r"survival", themes=("survival",)),
        _c(r"revenge|vengeance", themes=("revenge",)),
        _c(r"coming of age", themes=("coming of age",)),
        _c(r"friendship", themes=("friendship",)),
        _c(r"dinosaurs?", themes=("dinosaurs",)),
        _c(r"vampires?", themes=("vampires",)),
        _c(r"magic(?:al)?|wizards?|witch(?:es)?|sorcery", themes=("magic",)),
        _c(r"dragons?", themes=("dragons",)),
        _c(r"pirates?", themes=("pirates",)),
        _c(r"high school|teens?|teenagers?", themes=("teen",)),
        _c(r"road trips?", themes=("road trip",)),
        _c(r"christmas|xmas|holiday", themes=("christmas",)),
        _c(r"(?:based on (?:a )?)?true stor(?:y|ies)|real events", themes=("true story",)),
        _c(r"courtroom|legal", themes=("courtroom",)),
        _c(r"prisons?|jail", themes=("prison",)),
        _c(r"cooking|food|chefs?|baking", themes=("food",)),
        _c(r"monsters?|kaiju", themes=("monsters",)),
        _c(r"ghosts?|haunted|hauntings?", themes=("ghosts",)),
        _c(r"weddings?", themes=("wedding",)),
        _c(r"multiverse|parallel (?:universes?|worlds?)", themes=("multiverse",)),
        _c(r"(?:natural )?disasters?", themes=("disaster",)),
        _c(r"small town", themes=("small town",)),
        _c(r"sharks?", themes=("sharks",)),
        _c(r"politics|political", themes=("politics",)),
        # -- kinds
        _c(r"movies?|films?|flicks?|feature films?|cinema", kind=MOVIE),
        _c(
            r"tv(?: shows?| series)?|series|shows?(?! (?:me|us)\b)|mini series|miniseries|limited series"
            rf"|seasons?|episodes?|binge(?:{_SEP}(?:worthy|watch|able))?",
            kind=SERIES,
        ),
    ]
)

# Platform aliases. Strong ones mean the platform anywhere; weak ones ("max", "amazon") only
# right after "on"/"via", since alone they usually mean something else ("max 90 minutes").
_ON = r"(?:(?:streaming|available|only|exclusively|watch(?:able)?|now) )?(?:on|via|at|from|in) "
_STRONG: Final[tuple[tuple[str, str], ...]] = (
    ("netflix", "netflix"),
    ("(?:amazon )?prime(?: video)?|amazon video", "prime_video"),
    (rf"disney{_SEP}(?:\+|plus)", "disney_plus"),
    (rf"hbo(?:{_SEP}max)?", "hbo_max"),
    ("hulu", "hulu"),
    (rf"apple{_SEP}tv(?:{_SEP}(?:\+|plus))?", "apple_tv_plus"),
    (rf"paramount(?:{_SEP}(?:\+|plus))?", "paramount_plus"),
    ("peacock", "peacock"),
    (rf"you{_SEP}tube", "youtube"),
)
_WEAK: Final[tuple[tuple[str, str], ...]] = (
    ("amazon", "prime_video"),
    ("disney", "disney_plus"),
    ("max", "hbo_max"),
    ("apple", "apple_tv_plus"),
    ("yt", "youtube"),
)
PLATFORM_NAMES: Final = "|".join(p for p, _ in (*_STRONG, *_WEAK))
PLATFORMS_TABLE: Final = PhraseTable(
    [(rf"(?:{_ON})?(?:{p})", v) for p, v in _STRONG] + [(rf"{_ON}(?:{p})", v) for p, v in _WEAK]
)

FREE = (Monetization.FREE, Monetization.ADS)
MONETIZATION: Final = PhraseTable(
    [
        (
            r"(?<!-)free(?!-)(?: to (?:watch|stream))?|for free|no subscription|free with ads"
            r"|without (?:a )?subscription|without paying|at no cost",
            FREE,
        ),
        (rf"with ads|ad{_SEP}supported|avod", (Monetization.ADS,)),
        (r"(?:to |for )?rent(?:al|als|ing)?", (Monetization.RENT,)),
        (r"(?:to |for )?(?:buy|purchase|own)|buying", (Monetization.BUY,)),
        (
            r"(?:included (?:with|in) )?(?:my )?subscriptions?|included",
            (Monetization.SUBSCRIPTION,),
        ),
    ]
)

# Words that carry no meaning for search: articles, request filler, generic praise.
STOPWORDS: Final = words(
    """
    a about above after again all also am an and any anything are around as at be been before being
    best better but by can could did do does doing done during each either else even ever every
    few for from get give go going good got great had has have having he her here hers him his how
    i i'd i'll i'm i've if in into is it it's its just kind know let like likely looking lot lots
    make me might more most much must my myself need nice no nor not now of off on once one only
    or other our out over own please pretty really recommend recommendation recommendations
    recommended right same see seen she should show similar so some someone something sort stuff
    such suggest suggestion suggestions than that the their them then there these they thing things
    this those to tonight too type under up us very want wanna watch watching watched way we what
    whats what's when where which while who whom why will with would you your yours find looking
    lookin gimme give enjoy enjoyed love loved liked
    """
)

# Words that look like names after a bare "with" but describe the content instead.
NOT_NAMES: Final = words(
    """
    strong female male lead leads great good lots plenty little some no amazing beautiful
    stunning incredible awesome cool nice happy sad twist twists ending endings ads subtitles
    subtitle dubbing dub english spanish french german japanese korean italian hindi plot story
    characters character cast music soundtrack visuals effects special scenes scene dialogue
    minimal heavy light big small high low real true famous talking animals friends family my
    """
)

SMALL_TITLE_WORDS: Final = words("a an and as at but by for from in into nor of on or the to vs with")
