import zoo
from zoo.media.points import load_points, render_points

tok = zoo.load("point_bert", weights="dVAE.pth")              # downloaded from the card's weights_url (Tsinghua Cloud)
cloud = tok.prepare_points(load_points("chair.ply")[None])    # [1, 1024, 3]: FPS-sampled, unit sphere
tokens = tok.encode(cloud)                                    # ids [1, 64] (codebook 8192) + tokens.meta["centers"] [1, 64, 3]
recon = tok.decode(tokens)                                    # [1, 2048, 3]: 32 points per patch
render_points([cloud[0], recon[0]], "point_bert.png", labels=["input", "reconstruction"])
