"""Convolutional beta-VAE for 64x64 RGB faces (after Higgins et al. 2017 and 1Konny/Beta-VAE).

The encoder maps an image to the mean and log-variance of a diagonal Gaussian q(z|x); the decoder
maps z to per-pixel logits, and images are `torch.sigmoid(logits)` (the sheet's hint).
Loss per image = reconstruction + beta * KL(q(z|x) || N(0, I)), with the reconstruction a Gaussian
log-likelihood: the squared error summed over the 3x64x64 pixels (sigma^2 = 1/2, constants dropped,
as in 1Konny/Beta-VAE for CelebA). beta = 0 is the plain (non-regularised) autoencoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils.checkpoint import load_checkpoint, load_state_dict_float32
from utils.errors import UserError

ARCH_KEYS = ("z_dim", "channels", "batchnorm", "image_size")


def conv_block(c_in, c_out, batchnorm):
    """Halves the resolution: 4x4 convolution with stride 2."""
    norm = [nn.BatchNorm2d(c_out)] if batchnorm else []
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm), *norm, nn.LeakyReLU(0.2))


def deconv_block(c_in, c_out, batchnorm):
    """Doubles the resolution: 4x4 transposed convolution with stride 2."""
    norm = [nn.BatchNorm2d(c_out)] if batchnorm else []
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not batchnorm), *norm, nn.LeakyReLU(0.2))


class BetaVAE(nn.Module):
    def __init__(self, z_dim: int = 32, channels: tuple[int, ...] = (32, 32, 64, 64), batchnorm: bool = True,
                 image_size: int = 64):
        super().__init__()
        if image_size != 64:
            raise ValueError("the network is built for 64x64 images (--image_size 64)")
        if len(channels) != 4:
            raise ValueError(f"channels must list 4 numbers (one per resolution), got {channels}")
        c1, c2, c3, c4 = channels
        self.z_dim = z_dim
        self.channels = tuple(channels)
        self.batchnorm = batchnorm
        self.encoder = nn.Sequential(
            conv_block(3, c1, batchnorm),     # B, c1, 32, 32
            conv_block(c1, c2, batchnorm),    # B, c2, 16, 16
            conv_block(c2, c3, batchnorm),    # B, c3,  8,  8
            conv_block(c3, c4, batchnorm),    # B, c4,  4,  4
            nn.Flatten(),          # B, c4*16
            nn.Linear(c4 * 16, 2 * z_dim),  # B, 2 z_dim: mean and log-variance
        )
        self.decoder_in = nn.Sequential(nn.Linear(z_dim, c4 * 16), nn.LeakyReLU(0.2))  # B, c4*16
        self.decoder = nn.Sequential(
            deconv_block(c4, c3, batchnorm),  # B, c3,  8,  8
            deconv_block(c3, c2, batchnorm),  # B, c2, 16, 16
            deconv_block(c2, c1, batchnorm),  # B, c1, 32, 32
            nn.ConvTranspose2d(c1, 3, 4, 2, 1),  # B, 3, 64, 64: logits
        )

    def encode(self, x: torch.Tensor):
        stats = self.encoder(x)                      # [B, 2 z]
        mu, logvar = stats.chunk(2, dim=1)           # [B, z] each
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_in(z).view(-1, self.channels[3], 4, 4)  # [B, c4, 4, 4]
        return self.decoder(h)                                     # [B, 3, 64, 64] logits

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample and latent unit, in nats: [B, z]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared error of sigmoid(logits) summed over pixels, averaged over the batch."""
    return F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / x.shape[0]


def vae_loss(logits, x, mu, logvar, beta: float):
    """(total, reconstruction, KL summed over units) each averaged over the batch."""
    recon = reconstruction_loss(logits, x)
    kl = kl_per_unit(mu, logvar).sum(1).mean()
    return recon + beta * kl, recon, kl


def load_vae_checkpoint(path) -> dict:
    """A beta-VAE checkpoint of this project (on the CPU), or a UserError that says what it is not."""
    ckpt = load_checkpoint(path)
    if "z_dim" not in ckpt.get("config", {}):
        raise UserError(f"{path} is not a beta-VAE checkpoint of this project")
    return ckpt


def load_vae(path) -> BetaVAE:
    """The trained beta-VAE of a checkpoint, in eval mode on the CPU."""
    ckpt = load_vae_checkpoint(path)
    config = ckpt["config"]
    model = BetaVAE(config["z_dim"], tuple(config["channels"]), config["batchnorm"], config["image_size"])
    load_state_dict_float32(model, ckpt["model"])
    return model.eval()
