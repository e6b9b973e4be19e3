"""How media enters and leaves zoo: images (``zoo.media.image``) and audio (``zoo.media.audio``)."""
