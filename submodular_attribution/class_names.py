"""The one place for class lists and prompt templates (zero-shot CLIP and friends).

=================  =======  ===========================================================
class set          classes  source
=================  =======  ===========================================================
``imagenet``       1000     ``open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES`` (read at
                            call time from the installed package), with its 80 OpenAI
                            prompt templates ``OPENAI_IMAGENET_TEMPLATES``
``cub``            200      CUB-200-2011, in the dataset's folder order ``001`` … ``200``
``lc25000_lung``   3        LC25000 lung folders ``lung_aca``, ``lung_n``, ``lung_scc``
=================  =======  ===========================================================

Templates are format strings with one ``{}`` (``"a photo of a {}."``). The bird and
histopathology templates below are this project's own choice, not taken from a paper.
"""
from __future__ import annotations

from typing import Callable

__all__ = [
    "CLASS_SETS", "CUB_CLASSES", "CUB_FOLDERS", "CUB_TEMPLATES", "LC25000_LUNG_CLASSES",
    "LC25000_LUNG_FOLDERS", "PATHOLOGY_TEMPLATES", "cub_classes", "cub_templates", "get_class_set",
    "imagenet_classes", "imagenet_templates", "lc25000_lung_classes", "pathology_templates",
]


# --------------------------------------------------------------------------- ImageNet


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names used for CLIP zero-shot (from the installed open_clip)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return [str(name) for name in IMAGENET_CLASSNAMES]


def imagenet_templates() -> list[str]:
    """The 80 OpenAI CLIP ImageNet prompt templates, as ``"... {} ..."`` format strings.

    open_clip stores them as callables ``f(classname) -> str``; calling one with ``"{}"`` turns
    it back into a format string (plain strings are kept as they are)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return [t("{}") if callable(t) else str(t) for t in OPENAI_IMAGENET_TEMPLATES]


# --------------------------------------------------------------------------- CUB-200-2011

# Folder names of CUB_200_2011/images without the "NNN." prefix, in the dataset's order
# (index i here is folder i+1, i.e. class label i in a 0-based evaluation list).
CUB_FOLDERS: tuple[str, ...] = (
    "Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Groove_billed_Ani",
    "Crested_Auklet", "Least_Auklet", "Parakeet_Auklet", "Rhinoceros_Auklet",
    "Brewer_Blackbird", "Red_winged_Blackbird", "Rusty_Blackbird", "Yellow_headed_Blackbird",
    "Bobolink", "Indigo_Bunting", "Lazuli_Bunting", "Painted_Bunting",
    "Cardinal", "Spotted_Catbird", "Gray_Catbird", "Yellow_breasted_Chat",
    "Eastern_Towhee", "Chuck_will_Widow", "Brandt_Cormorant", "Red_faced_Cormorant",
    "Pelagic_Cormorant", "Bronzed_Cowbird", "Shiny_Cowbird", "Brown_Creeper",
    "American_Crow", "Fish_Crow", "Black_billed_Cuckoo", "Mangrove_Cuckoo",
    "Yellow_billed_Cuckoo", "Gray_crowned_Rosy_Finch", "Purple_Finch", "Northern_Flicker",
    "Acadian_Flycatcher", "Great_Crested_Flycatcher", "Least_Flycatcher", "Olive_sided_Flycatcher",
    "Scissor_tailed_Flycatcher", "Vermilion_Flycatcher", "Yellow_bellied_Flycatcher", "Frigatebird",
    "Northern_Fulmar", "Gadwall", "American_Goldfinch", "European_Goldfinch",
    "Boat_tailed_Grackle", "Eared_Grebe", "Horned_Grebe", "Pied_billed_Grebe",
    "Western_Grebe", "Blue_Grosbeak", "Evening_Grosbeak", "Pine_Grosbeak",
    "Rose_breasted_Grosbeak", "Pigeon_Guillemot", "California_Gull", "Glaucous_winged_Gull",
    "Heermann_Gull", "Herring_Gull", "Ivory_Gull", "Ring_billed_Gull",
    "Slaty_backed_Gull", "Western_Gull", "Anna_Hummingbird", "Ruby_throated_Hummingbird",
    "Rufous_Hummingbird", "Green_Violetear", "Long_tailed_Jaeger", "Pomarine_Jaeger",
    "Blue_Jay", "Florida_Jay", "Green_Jay", "Dark_eyed_Junco",
    "Tropical_Kingbird", "Gray_Kingbird", "Belted_Kingfisher", "Green_Kingfisher",
    "Pied_Kingfisher", "Ringed_Kingfisher", "White_breasted_Kingfisher", "Red_legged_Kittiwake",
    "Horned_Lark", "Pacific_Loon", "Mallard", "Western_Meadowlark",
    "Hooded_Merganser", "Red_breasted_Merganser", "Mockingbird", "Nighthawk",
    "Clark_Nutcracker", "White_breasted_Nuthatch", "Baltimore_Oriole", "Hooded_Oriole",
    "Orchard_Oriole", "Scott_Oriole", "Ovenbird", "Brown_Pelican",
    "White_Pelican", "Western_Wood_Pewee", "Sayornis", "American_Pipit",
    "Whip_poor_Will", "Horned_Puffin", "Common_Raven", "White_necked_Raven",
    "American_Redstart", "Geococcyx", "Loggerhead_Shrike", "Great_Grey_Shrike",
    "Baird_Sparrow", "Black_throated_Sparrow", "Brewer_Sparrow", "Chipping_Sparrow",
    "Clay_colored_Sparrow", "House_Sparrow", "Field_Sparrow", "Fox_Sparrow",
    "Grasshopper_Sparrow", "Harris_Sparrow", "Henslow_Sparrow", "Le_Conte_Sparrow",
    "Lincoln_Sparrow", "Nelson_Sharp_tailed_Sparrow", "Savannah_Sparrow", "Seaside_Sparrow",
    "Song_Sparrow", "Tree_Sparrow", "Vesper_Sparrow", "White_crowned_Sparrow",
    "White_throated_Sparrow", "Cape_Glossy_Starling", "Bank_Swallow", "Barn_Swallow",
    "Cliff_Swallow", "Tree_Swallow", "Scarlet_Tanager", "Summer_Tanager",
    "Artic_Tern", "Black_Tern", "Caspian_Tern", "Common_Tern",
    "Elegant_Tern", "Forsters_Tern", "Least_Tern", "Green_tailed_Towhee",
    "Brown_Thrasher", "Sage_Thrasher", "Black_capped_Vireo", "Blue_headed_Vireo",
    "Philadelphia_Vireo", "Red_eyed_Vireo", "Warbling_Vireo", "White_eyed_Vireo",
    "Yellow_throated_Vireo", "Bay_breasted_Warbler", "Black_and_white_Warbler", "Black_throated_Blue_Warbler",
    "Blue_winged_Warbler", "Canada_Warbler", "Cape_May_Warbler", "Cerulean_Warbler",
    "Chestnut_sided_Warbler", "Golden_winged_Warbler", "Hooded_Warbler", "Kentucky_Warbler",
    "Magnolia_Warbler", "Mourning_Warbler", "Myrtle_Warbler", "Nashville_Warbler",
    "Orange_crowned_Warbler", "Palm_Warbler", "Pine_Warbler", "Prairie_Warbler",
    "Prothonotary_Warbler", "Swainson_Warbler", "Tennessee_Warbler", "Wilson_Warbler",
    "Worm_eating_Warbler", "Yellow_Warbler", "Northern_Waterthrush", "Louisiana_Waterthrush",
    "Bohemian_Waxwing", "Cedar_Waxwing", "American_Three_toed_Woodpecker", "Pileated_Woodpecker",
    "Red_bellied_Woodpecker", "Red_cockaded_Woodpecker", "Red_headed_Woodpecker", "Downy_Woodpecker",
    "Bewick_Wren", "Cactus_Wren", "Carolina_Wren", "House_Wren",
    "Marsh_Wren", "Rock_Wren", "Winter_Wren", "Common_Yellowthroat",
)

# Where the mechanical folder → name rule below would give a wrong or misspelt common name.
_CUB_NAME_FIXES = {
    "Chuck_will_Widow": "Chuck-will's-widow",
    "Whip_poor_Will": "Whip-poor-will",
    "Artic_Tern": "Arctic Tern",  # the dataset's folder is misspelt
    "Forsters_Tern": "Forster's Tern",
}


def _readable(folder: str) -> str:
    """``Black_footed_Albatross`` → ``Black-footed Albatross``: an underscore before a lower-case
    word joins a compound modifier (hyphen), any other underscore separates words (space)."""
    if folder in _CUB_NAME_FIXES:
        return _CUB_NAME_FIXES[folder]
    words = folder.split("_")
    out = words[0]
    for word in words[1:]:
        out += ("-" if word[:1].islower() else " ") + word
    return out


CUB_CLASSES: tuple[str, ...] = tuple(_readable(f) for f in CUB_FOLDERS)

# Ours: a few fine-grained bird prompts in the style of the CLIP templates.
CUB_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}, a type of bird.",
    "a photo of the {}, a type of bird.",
    "a close-up photo of a {}, a type of bird.",
    "a photo of a {} in the wild.",
)


def cub_classes() -> list[str]:
    return list(CUB_CLASSES)


def cub_templates() -> list[str]:
    return list(CUB_TEMPLATES)


# --------------------------------------------------------------------------- LC25000 (lung)

LC25000_LUNG_FOLDERS: tuple[str, ...] = ("lung_aca", "lung_n", "lung_scc")
LC25000_LUNG_CLASSES: tuple[str, ...] = (
    "lung adenocarcinoma", "benign lung tissue", "lung squamous cell carcinoma",
)

# Ours (not from the Quilt-1M paper): short histopathology captions, one ``{}`` each.
PATHOLOGY_TEMPLATES: tuple[str, ...] = (
    "a histopathology image of {}.",
    "an H&E image of {}.",
    "an H&E stained image of {}.",
    "a histopathology slide showing {}.",
    "a microscopic image of {}.",
    "a pathology image of {}.",
)


def lc25000_lung_classes() -> list[str]:
    return list(LC25000_LUNG_CLASSES)


def pathology_templates() -> list[str]:
    return list(PATHOLOGY_TEMPLATES)


# --------------------------------------------------------------------------- registry

ClassSet = tuple[Callable[[], list[str]], Callable[[], list[str]]]

# name → (classes getter, templates getter); getters are lazy so open_clip is imported on use only.
CLASS_SETS: dict[str, ClassSet] = {
    "imagenet": (imagenet_classes, imagenet_templates),
    "cub": (cub_classes, cub_templates),
    "lc25000_lung": (lc25000_lung_classes, pathology_templates),
}


def get_class_set(name: str) -> tuple[list[str], list[str]]:
    """``(classes, templates)`` of a registered class set; unknown names are an ``InputError``."""
    from .common.errors import InputError

    if name not in CLASS_SETS:
        raise InputError(f"unknown class set {name!r} (known: {', '.join(CLASS_SETS)})")
    classes, templates = CLASS_SETS[name]
    return classes(), templates()
