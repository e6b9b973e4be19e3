import zoo
from zoo.media.image import save_grid

gen = zoo.load("rectified_flow")          # rectified_flow.2_sd15: 2-Rectified Flow, InstaFlow's few-step teacher (CC-BY-NC-4.0)
images = gen.generate("a red fox in the snow", "blurry", steps=4, guidance_scale=1.5, seed=0)  # CFG as 2B rows, negatives allowed
save_grid([list(images)], "fox_2rf.png")  # defaults: 25 Euler steps, CFG 1.5 (the authors' README)
