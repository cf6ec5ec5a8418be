"""Random text for synthetic speech: English word sequences from a hand-written vocabulary (chosen to cover
every mouth shape: bilabials, labiodentals, rounded and spread vowels) and pseudo-words for other languages,
spelled with letters every Latin-script espeak voice reads by its own rules."""

from __future__ import annotations

import numpy as np

ENGLISH = """
the a an and or but if of to in on at by for from with about over under into out up down off back
I you he she we they it me him her us them my your his our their this that these those who what which
when where why how yes no not all some many much more most few every each both either other such
be is are was were been being have has had do does did will would shall should can could may might must
go goes went gone come came see saw seen look looked take took make made give gave get got put say said
tell told know knew think thought feel felt find found keep kept leave left let meet met pay paid bring
brought buy bought run ran move moved live lived love loved play played work worked talk talked walk
walked open opened close closed start stop stopped wait waited watch watched call called help helped
show showed turn turned need wanted want try tried use used ask asked seem seemed believe hope hoped
mother father brother sister baby family friend people person man woman child children boy girl
home house room door window floor table chair bed kitchen garden street road city town country world
water food bread milk coffee tea fruit apple orange banana potato tomato cheese butter soup sugar salt
money book paper letter pen phone music movie picture story news school class lesson teacher student
doctor nurse police office shop market bank hotel church hospital station airport train bus car boat
plane bike ship horse cow sheep pig dog cat bird fish mouse bee fox wolf bear lion monkey snake duck
sun moon star sky cloud rain snow wind storm fire ice earth stone rock tree flower grass leaf forest
river lake sea ocean beach island mountain hill valley field farm bridge wall roof
day night morning evening noon week month year time hour minute second today tomorrow yesterday
Monday Tuesday Wednesday Thursday Friday Saturday Sunday spring summer autumn winter
one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred
thousand million first last next half whole zero
good bad big small long short high low old new young great little right wrong true false easy hard
hot cold warm cool wet dry clean dirty full empty heavy light dark bright loud quiet soft strong weak
fast slow early late happy sad angry afraid tired hungry sick well busy free ready sure sorry
beautiful ugly pretty nice lovely awful strange simple special important possible different same
red blue green yellow white black brown pink purple grey gold silver
very really quite just only also still even again always never often sometimes soon now then here
there today maybe perhaps almost enough too together away around through between behind beyond
because although while until since before after during without within against among
food room moon soon noon pool school tool boot shoe blue true who whom whose two too do you youth
rule cool choose move prove lose juice fruit group soup truth mood food zoo flute
go no so show low slow snow know boat coat road hope rope home phone stone bone note vote open over
oh old cold gold hold sold told both most post toast ghost
saw law jaw caught taught bought thought all ball call fall wall small talk walk chalk
see me we he be tree free three sea tea eat meat beat seat need feed feet street sweet keep deep sleep
cheese peace piece please each reach teach speech leave believe field
sit bit fit hit kit pin tin win thin think thing sing ring king fish dish wish this miss kiss
bet get let met net pet set wet yet bed red said head dead bread spread
cat hat mat bat rat sat fat that map cap tap happy apple bag back black
cup cut but hut nut shut run fun sun gun bus must trust love above come some done none
bird word world work worse girl first third her were turn learn earn
bike like time fine mine nine line wine white write right night light fight buy my why fly high
now how cow wow out about shout mouth south house mouse loud cloud proud
boy toy joy voice noise choice point join coin oil
bear care hair chair where there pair fair
ear fear near dear here clear year beer
pool book look took cook good wood foot put push pull full
mama papa baby bubble pebble maybe mumble bumpy puppy hobby bobby
five fifty fever fifteen favour forever vivid valve villa violin vote
with mother father weather leather whether thirty thumb thick thin breathe
she shop shoe show shy ship fish wash push chip church cheap chess chin teach watch
judge jump joy jeans jelly orange bridge page
sing singing king long song wrong young strong
yes yellow yard yawn you young your yoghurt
way we wet wind wide wild winter water wood wool woman wonder wave wait warm
lamp little lovely lily lemon lion lollipop
number member remember amber ember umbrella symbol
computer camera program system problem question answer example result reason moment minute
""".split()

CONSONANTS = "p b t d k g m n f v s z l r w j h ch sh th ph st pl br tr pr kr gr bl fl sp sm sn".split()
VOWELS = "a e i o u a e i o u ai au ei ou oo ee ie ui".split()
CODAS = ["", "", "", "", "n", "m", "s", "t", "r", "l", "k", "p", "nd", "st", "ng"]


def english_text(rng: np.random.Generator, n_words: int) -> str:
    """n_words random words from ENGLISH, with commas and full stops now and then."""
    words = [str(w) for w in rng.choice(ENGLISH, n_words)]
    return _punctuate(rng, words)


def pseudo_text(rng: np.random.Generator, n_words: int) -> str:
    """n_words pseudo-words of 1-3 random syllables (consonant onset, vowel, optional coda)."""
    words = []
    for _ in range(n_words):
        syl = []
        for _ in range(int(rng.integers(1, 4))):
            onset = str(rng.choice(CONSONANTS)) if rng.random() < 0.85 else ""
            syl.append(
                onset + str(rng.choice(VOWELS)) + (str(rng.choice(CODAS)) if rng.random() < 0.4 else "")
            )
        words.append("".join(syl))
    return _punctuate(rng, words)


def _punctuate(rng: np.random.Generator, words: list[str]) -> str:
    out = []
    for i, w in enumerate(words):
        if i == 0 or out[-1].endswith("."):
            w = w[:1].upper() + w[1:]
        end = i == len(words) - 1
        r = rng.random()
        out.append(w + ("." if end or r < 0.08 else "," if r < 0.16 else ""))
    return " ".join(out)
