"""How media enters and leaves zoo: images (``zoo.media.image``), audio (``zoo.media.audio``), video
(``zoo.media.video``) and point clouds (``zoo.media.points``)."""
