"""A small transformer language model on generated token sequences: a workload of the suite's contract.

    pytest --workload token_transformer:TokenTransformer --world-sizes 1,2 --steps 6

``D_MODEL`` is the model's width (the feed-forward layer is four times it). The sequences repeat a pattern
drawn from a fixed seed, so the next token is learnable and every rank sees the same data without a download.
"""
import torch
from torch import nn

D_MODEL = 64
LAYERS = 2
HEADS = 4
VOCABULARY = 256
SEQUENCE = 64
SEQUENCES = 512


class GeneratedTokens(torch.utils.data.Dataset):
    """Sequences made of a short random motif repeated: (tokens, the same tokens shifted by one)."""

    def __init__(self, count: int = SEQUENCES, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        motifs = torch.randint(0, VOCABULARY, (count, 8), generator=generator)
        self.tokens = motifs.repeat(1, (SEQUENCE + 1) // 8 + 1)[:, :SEQUENCE + 1]

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int):
        return self.tokens[i, :-1], self.tokens[i, 1:]


class TinyLanguageModel(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.embed = nn.Embedding(VOCABULARY, width)
        self.position = nn.Parameter(torch.zeros(SEQUENCE, width))
        layer = nn.TransformerEncoderLayer(width, HEADS, dim_feedforward=4 * width, batch_first=True,
                                           dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = nn.Linear(width, VOCABULARY)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(SEQUENCE), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(tokens) + self.position
        return self.head(self.encoder(hidden, mask=self.causal, is_causal=True))


class TokenTransformer:
    name = f"transformer language model (width {D_MODEL})"

    def model(self) -> nn.Module:
        return TinyLanguageModel(D_MODEL)

    def dataset(self) -> torch.utils.data.Dataset:
        return GeneratedTokens()

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output.reshape(-1, VOCABULARY), target.reshape(-1))
