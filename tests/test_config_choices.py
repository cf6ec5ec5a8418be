import dataclasses

from talkface.config import AnimateOptions
from talkface.face.expression import EMOTIONS


def test_emotion_choices_match_the_learned_offsets():
    field = {f.name: f for f in dataclasses.fields(AnimateOptions)}["emotion"]
    assert set(field.metadata["choices"]) == {"neutral", *EMOTIONS}
