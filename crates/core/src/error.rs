//! The one error type of pareto-core. Variants carry the evidence (path, tensor, offset,
//! expected/got) so a message names what is wrong and where.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- I/O -------------------------------------------------------------------------------
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {bytes} bytes or more is over the {cap}-byte cap for a {what}; is this the right file?")]
    InputTooLarge { path: PathBuf, what: &'static str, bytes: u64, cap: u64 },

    // ---- store (safetensors, shards, config) -------------------------------------------------
    #[error("{path}: file is {file_len} bytes, too short for the 8-byte safetensors header length")]
    HeaderTruncated { path: PathBuf, file_len: u64 },
    #[error("{path}: header length {header_len} bytes exceeds the {limit}-byte cap")]
    HeaderTooLarge { path: PathBuf, header_len: u64, limit: u64 },
    #[error("{path}: header length {header_len} bytes runs past the end of the {file_len}-byte file")]
    HeaderBeyondFile { path: PathBuf, header_len: u64, file_len: u64 },
    #[error("{path}: header is not UTF-8 (first bad byte at header offset {valid_up_to})")]
    HeaderNotUtf8 { path: PathBuf, valid_up_to: usize },
    #[error("{path}: header is not valid JSON: {source}")]
    HeaderNotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: header must be a JSON object mapping tensor names to entries ({detail})")]
    HeaderNotObject { path: PathBuf, detail: String },
    #[error("{path}: tensor `{tensor}`: invalid header entry: {problem}")]
    HeaderEntryInvalid { path: PathBuf, tensor: String, problem: String },
    #[error("{path}: __metadata__ must map strings to strings: {problem}")]
    MetadataInvalid { path: PathBuf, problem: String },
    #[error("{path}: tensor `{tensor}` has unknown dtype `{dtype}`")]
    UnknownDType { path: PathBuf, tensor: String, dtype: String },
    #[error("{path}: tensor `{tensor}`: shape {shape:?} of {dtype} overflows a 64-bit byte count")]
    TensorSizeOverflow { path: PathBuf, tensor: String, dtype: crate::store::DType, shape: Vec<u64> },
    #[error(
        "{path}: tensor `{tensor}`: shape {shape:?} of {dtype} needs {expected} bytes, \
         but data_offsets [{begin}, {end}] span {got}"
    )]
    TensorByteCountMismatch {
        path: PathBuf,
        tensor: String,
        dtype: crate::store::DType,
        shape: Vec<usize>,
        begin: u64,
        end: u64,
        expected: u64,
        got: u64,
    },
    #[error("{path}: tensor `{tensor}`: data_offsets [{begin}, {end}] end before they begin")]
    OffsetsReversed { path: PathBuf, tensor: String, begin: u64, end: u64 },
    #[error(
        "{path}: tensor `{tensor}`: data_offsets [{begin}, {end}] lie outside the \
         {data_len}-byte data section"
    )]
    OffsetsOutOfBounds { path: PathBuf, tensor: String, begin: u64, end: u64, data_len: u64 },
    #[error(
        "{path}: tensors `{first}` (ends at data offset {first_end}) and `{second}` \
         (begins at {second_begin}) overlap"
    )]
    TensorsOverlap { path: PathBuf, first: String, first_end: u64, second: String, second_begin: u64 },
    #[error(
        "{path}: data bytes [{gap_begin}, {gap_end}) before tensor `{tensor}` belong to no \
         tensor (safetensors data must be contiguous)"
    )]
    DataGap { path: PathBuf, tensor: String, gap_begin: u64, gap_end: u64 },
    #[error(
        "{path}: data section truncated: tensor `{tensor}` ends at data offset {end}, but the \
         file holds only {data_len} data bytes ({file_len}-byte file)"
    )]
    DataTruncated { path: PathBuf, tensor: String, end: u64, data_len: u64, file_len: u64 },
    #[error(
        "{path}: {data_len}-byte data section but the tensors end at data offset {tensors_end}: \
         trailing bytes belong to no tensor"
    )]
    TrailingData { path: PathBuf, tensors_end: u64, data_len: u64 },
    #[error("{path}: tensor `{tensor}` appears more than once in the header")]
    DuplicateTensor { path: PathBuf, tensor: String },
    #[error("{path}: shard index is not valid JSON: {source}")]
    IndexNotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: shard index has no `weight_map` object")]
    IndexMissingWeightMap { path: PathBuf },
    #[error("{path}: invalid shard index: {problem}")]
    IndexInvalid { path: PathBuf, problem: String },
    #[error("{index} lists shard {shard}, which does not exist")]
    ShardMissing { index: PathBuf, shard: PathBuf },
    #[error("{index} places tensor `{tensor}` in {shard}, but that shard does not contain it")]
    TensorMissingFromShard { index: PathBuf, tensor: String, shard: PathBuf },
    #[error("{shard} holds tensor `{tensor}`, which {index} does not list for that shard")]
    TensorNotInIndex { index: PathBuf, tensor: String, shard: PathBuf },
    #[error("tensor `{tensor}` is stored in two shards: {first} and {second}")]
    TensorInMultipleShards { tensor: String, first: PathBuf, second: PathBuf },
    #[error(
        "no weights found in {dir}: expected model.safetensors, model.safetensors.index.json \
         or a single *.safetensors file"
    )]
    NoWeights { dir: PathBuf },
    #[error("{path}: not a safetensors model (expected a .safetensors file, an index .json or a folder)")]
    NotSafetensors { path: PathBuf },
    #[error("tensor `{name}` not found in the model")]
    TensorNotFound { name: String },
    #[error("tensor `{tensor}` has dtype {dtype}, which is not a floating-point type")]
    NotAFloatTensor { tensor: String, dtype: crate::store::DType },
    #[error("no config.json in {dir}")]
    ConfigMissing { dir: PathBuf },
    #[error(
        "{format} needs the model's config.json (serving engines read the architecture and the \
         quantization_config from it), and {dir} has none: add the model's config.json, or export \
         --format safetensors"
    )]
    ExportNeedsConfig { format: &'static str, dir: PathBuf },
    #[error("{path}: invalid model config: {problem}")]
    ConfigInvalid { path: PathBuf, problem: String },
    #[error(
        "config.json disagrees with tensor `{tensor}`: {rule} gives shape {expected:?}, \
         the weights have {got:?}"
    )]
    ConfigShapeMismatch { tensor: String, rule: String, expected: Vec<usize>, got: Vec<usize> },
    #[error(
        "config.json says {expected} layers, but the weights hold {found} distinct layer indices \
         (highest {highest:?})"
    )]
    ConfigLayerCountMismatch { expected: usize, found: usize, highest: Option<usize> },

    // ---- formats -------------------------------------------------------------------------------
    #[error(transparent)]
    Format(#[from] pareto_formats::FormatError),

    #[error("{device} failed while quantizing `{tensor}`: {detail}")]
    Device { device: String, tensor: String, detail: String },

    #[error(
        "the recipe quantizes {tensors} tensor(s) with {algorithm} (e.g. `{example}`), which needs calibration \
         statistics: give a calibration set (`pareto compress --calibration FILE`; the studio does not calibrate yet)"
    )]
    NeedsCalibration { algorithm: &'static str, tensors: usize, example: String },

    #[error("importance matrix {path}: {message}")]
    Imatrix { path: PathBuf, message: String },

    #[error("{algorithm} failed on `{tensor}`: {detail}")]
    Solver { algorithm: &'static str, tensor: String, detail: String },

    // ---- recipe --------------------------------------------------------------------------------
    #[error("allocation: {0}")]
    Allocation(String),
    #[error(
        "the budget of {budget} bytes is below the smallest allocation, {minimum} bytes (every tensor at its cheapest candidate format): raise the budget or add a smaller format"
    )]
    BudgetInfeasible { budget: u64, minimum: u64 },
    #[error("recipe {origin}: {message}")]
    RecipeParse { origin: String, message: String },
    #[error("recipe {place}: {message}")]
    RecipeInvalid { place: String, message: String },
    #[error("unknown preset {name:?}; valid presets: {valid} (or a path to a .toml recipe)")]
    UnknownPreset { name: String, valid: String },
    #[error("bad target pattern {target:?}: {message}")]
    BadTarget { target: String, message: String },
    #[error(
        "{path} is already a compressed model: {evidence}; compress the original (dense) model instead — its codes and scales are not weights"
    )]
    AlreadyCompressed { path: PathBuf, evidence: String },
    #[error(
        "structured pruning supports LLaMA-style decoders with separate projections and two norms a layer (llama, mistral, qwen2, qwen3), not {architecture:?}"
    )]
    StructuredUnsupported { architecture: String },

    // ---- compress and export -------------------------------------------------------------------
    #[error(
        "tensor {tensor}: non-finite value {value} at element {index}; refusing to write it (fix or exclude the tensor)"
    )]
    NonFinite { tensor: String, index: usize, value: f32 },
    #[error(
        "output {output} is the source model's folder, one of its files, or contains them; the source is never modified"
    )]
    OutputIsSource { output: PathBuf },
    #[error(
        "output {output} lies inside the source model's folder {source_dir}; write it elsewhere (the source folder is never modified)"
    )]
    OutputInsideSource { output: PathBuf, source_dir: PathBuf },
    #[error("output {path} already exists (an earlier Pareto output); pass --force to replace it")]
    OutputExists { path: PathBuf },
    #[error(
        "output {path} already exists and is {what}; Pareto replaces only its own earlier outputs, even with --force: choose another output path or move it away yourself"
    )]
    OutputNotOurs { path: PathBuf, what: String },
    #[error("tensor {tensor}: size overflows 64-bit arithmetic")]
    SizeOverflow { tensor: String },
    #[error("internal writer mismatch: expected {expected}, got {got}")]
    WriterMismatch { expected: String, got: String },
    #[error("could not write {path}: {source}{hint}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: &'static str,
    },

    // ---- export formats ------------------------------------------------------------------------
    #[error("GGUF export supports the LLaMA family ({supported}); this model's architecture is {architecture:?}")]
    GgufUnsupportedArchitecture { architecture: String, supported: &'static str },
    #[error("{target} cannot store tensor {tensor} as {format}; {target} supports {supported}")]
    ExportFormatUnsupported { target: &'static str, tensor: String, format: String, supported: String },
    #[error("{target}: tensor {tensor}: {problem}")]
    ExportTensor { target: &'static str, tensor: String, problem: String },
    #[error("{target}: {problem}")]
    ExportConfig { target: &'static str, problem: String },
    #[error("{path}: tokenizer cannot be converted to GGUF: {problem}")]
    TokenizerUnsupported { path: PathBuf, problem: String },
    #[error("{path}: invalid GGUF at byte {offset}: {problem}")]
    GgufInvalid { path: PathBuf, offset: u64, problem: String },
    #[error(
        "{path}: not enough free space: needs {needed} bytes ({needed_gib:.1} GiB), {available_gib:.1} GiB free{hint}"
    )]
    NotEnoughSpace { path: PathBuf, needed: u64, needed_gib: f64, available_gib: f64, hint: &'static str },
    #[error("{path}: this GGUF cannot be read as a model: {problem}")]
    GgufUnsupported { path: PathBuf, problem: String },
    #[error("{path}: GGUF tensor {tensor}: {problem}")]
    GgufTensorInvalid { path: PathBuf, tensor: String, problem: String },
    #[error("{path}: not a readable {format} artifact: {problem}")]
    ArtifactInvalid { path: PathBuf, format: &'static str, problem: String },

    // ---- jobs ----------------------------------------------------------------------------------
    #[error("tensor {tensor}: {source}")]
    InTensor {
        tensor: String,
        #[source]
        source: Box<Error>,
    },
    #[error("cancelled by the user")]
    Cancelled,
}

impl Error {
    /// Names the tensor an error from a lower layer (a codec, a dtype decode) happened on.
    pub fn for_tensor(self, tensor: &str) -> Self {
        match self {
            Error::Format(source) => {
                Error::InTensor { tensor: tensor.to_string(), source: Box::new(Error::Format(source)) }
            }
            other => other,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
