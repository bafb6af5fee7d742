"""Table 9 as data: per-preset training hyperparameters and Config E architecture (paper Appendix)."""
# Each row: resolution, the paper's GPU count for the run (Table 9; runners' `paper` presets
# ask for it through `resources`, one rank per GPU), class conditioning, channels per stage from high to low resolution,
# 3x3-conv groups per stage (Config E), duration/burn-in in kimg, minibatch, and the "a -> b"
# ramps as [a, b] (a constant stands alone). EMA half-lives in kimg. Learning rate, gamma, beta2
# and augmentation-probability ramps run over the burn-in (cosine, as the official code ramps p
# of StyleGAN2-ADA's 'bgc' pipeline, roadmap/augment.py; no adaptive controller).
# Architecture columns read by roadmap/configs: `stylegan2_channels` are Config A's widths per
# stage (StyleGAN2-ADA: min(channel_base / resolution, channel_max); Table 2's ratios derive
# Configs B..E1 from them; E's `channels` = 1.5x these). `low_precision_stages`: how many of the
# highest-resolution stages of G and D run in bf16/fp16 when mixed precision is on (official
# train.py: 3 at 32x32, 4 otherwise; the paper's text says "4").
PRESETS = {
    #                 resolution cond  channels                                   groups                       duration   burn_in   batch  lr              gamma         beta2        ema_half_life_kimg  aug_p       xflip  stylegan2_channels (Config A)             low_precision_stages
    "stackedmnist": dict(resolution=32, gpus=8,  conditional=False, channels=[768] * 4,                         groups=[96] * 4,                         duration_kimg=10_000,    burn_in_kimg=2_000,   batch=512,  lr=2e-4,          gamma=[1.0, 0.1],    beta2=[0.9, 0.99], ema_half_life_kimg=[0, 500],    augment_p=0.0,  xflip=False, stylegan2_channels=[512] * 4,                           low_precision_stages=3),
    "cifar10":      dict(resolution=32, gpus=8,  conditional=True,  channels=[768] * 4,                         groups=[96] * 4,                         duration_kimg=250_000,   burn_in_kimg=20_000,  batch=512,  lr=[2e-4, 5e-5],  gamma=[0.05, 0.005], beta2=[0.9, 0.99], ema_half_life_kimg=[0, 5_000],  augment_p=[0, 0.55], xflip=True,  stylegan2_channels=[512] * 4,                           low_precision_stages=3),
    "ffhq64":       dict(resolution=64, gpus=8,  conditional=False, channels=[384, 768, 768, 768, 768],         groups=[48, 96, 96, 96, 96],             duration_kimg=100_000,   burn_in_kimg=20_000,  batch=256,  lr=[2e-4, 5e-5],  gamma=[2.0, 0.2],    beta2=[0.9, 0.99], ema_half_life_kimg=[0, 500],    augment_p=[0, 0.3],  xflip=True,  stylegan2_channels=[256, 512, 512, 512, 512],           low_precision_stages=4),
    "ffhq256":      dict(resolution=256, gpus=8, conditional=False, channels=[96, 192, 384, 768, 768, 768, 768], groups=[12, 24, 48, 96, 96, 96, 96],   duration_kimg=200_000,   burn_in_kimg=20_000,  batch=256,  lr=[2e-4, 5e-5],  gamma=[150.0, 15.0], beta2=[0.9, 0.99], ema_half_life_kimg=[0, 500],    augment_p=[0, 0.3],  xflip=True,  stylegan2_channels=[64, 128, 256, 512, 512, 512, 512],  low_precision_stages=4),
    "imagenet32":   dict(resolution=32, gpus=32,  conditional=True,  channels=[1536] * 4,                        groups=[96] * 4,                         duration_kimg=1_000_000, burn_in_kimg=200_000, batch=4096, lr=[2e-4, 5e-5],  gamma=[0.5, 0.05],   beta2=[0.9, 0.99], ema_half_life_kimg=[0, 50_000], augment_p=[0, 0.5],  xflip=True,  stylegan2_channels=[1024] * 4,                          low_precision_stages=3),
    "imagenet64":   dict(resolution=64, gpus=64,  conditional=True,  channels=[1536] * 5,                        groups=[96] * 5,                         duration_kimg=1_000_000, burn_in_kimg=200_000, batch=4096, lr=[2e-4, 5e-5],  gamma=[1.0, 0.1],    beta2=[0.9, 0.99], ema_half_life_kimg=[0, 50_000], augment_p=[0, 0.4],  xflip=True,  stylegan2_channels=[1024] * 5,                          low_precision_stages=4),
}

# Class counts of the conditional presets (for G's embedding and the projection D).
NUM_CLASSES = {"cifar10": 10, "imagenet32": 1000, "imagenet64": 1000}

# Fields of a preset row that are training hyperparameters (RunConfig fields), as opposed to
# architecture facts that the configuration builders read.
TRAINING_FIELDS = ("duration_kimg", "burn_in_kimg", "batch", "lr", "gamma", "beta2", "ema_half_life_kimg", "augment_p", "xflip")


def preset_names() -> list[str]:
    return list(PRESETS)
