"""Generated names of the form ``adjective-animal-NNN`` for runs and logged models,
as MLflow makes them; stores call :func:`generate_run_name` when the caller gives none."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "able agreeable amazing ambitious amusing auspicious bedecked big bold brawny bright "
    "calm capable carefree caring casual charming clean classy clumsy colorful crawling "
    "dapper debonair defiant delicate delightful dashing efficient enchanting entertaining "
    "enthused exultant fearless flawless fortunate fun funny gaudy gentle gifted glamorous "
    "go-to gregarious handsome hilarious honorable illustrious incongruous indecisive "
    "industrious intelligent inquisitive invincible judicious kindly languid learned "
    "legendary likeable loud luminous luxuriant lyrical magnificent marvelous masked "
    "melodic merciful mercurial monumental mysterious nebulous nervous nimble nosy "
    "omniscient orderly overjoyed peaceful painted persistent placid polite popular "
    "powerful puzzled rambunctious rare rebellious respected resilient righteous rogue "
    "rumbling salty sassy secretive selective sedate serious shivering skillful sneaky "
    "spiffy spiritual spotted stately suave stylish thoughtful trusting unequaled "
    "upbeat unique useful vaunted victorious welcoming whimsical wise worried youthful zealous"
).split()

_ANIMALS = (
    "ant ape asp auk bass bat bear bee bird boar bug calf carp cat chimp cod colt conch "
    "cow crab crane croc crow cub deer doe dog dolphin donkey dove duck eel elk fawn finch "
    "fish flea fly foal fowl fox frog gnat gnu goat goose grouse grub gull hare hawk hen "
    "hog hornet horse hound jay kit kite koi lamb lark loon lynx mare midge mink mole moose "
    "moth mouse mule newt owl ox panda penguin perch pig pug quail ram rat ray robin roo "
    "rook seal shad shark sheep shoat shrew shrike shrimp skink skunk sloth slug smelt "
    "snail snake snipe sow sponge squid squirrel stag steed stoat stork swan tern toad "
    "trout turtle vole wasp whale wolf worm wren yak zebra"
).split()


def generate_run_name() -> str:
    """``adjective-animal-N`` with N from 0 to 1000, unpadded, as MLflow draws it.

    From :mod:`random` (reseeded in each forked worker), not :mod:`secrets`: a name is
    no secret, and each of secrets' draws is a system call that lets go of the GIL."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}-{random.randrange(1001)}"
