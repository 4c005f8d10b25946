#!/usr/bin/env python3
"""Writes OUT (default /tmp/llama8b-shape.gguf): a Llama-3-8B-shaped Q4_K_M GGUF header with a real-size
vocabulary (128,256 tokens, 280,147 merges) and 291 tensor infos; the tensor data is a sparse hole, so
the 5.2 GB file takes 8 MB of disk. For timing `pareto inspect` on a large header (BENCHMARKS.md)."""
import struct, random, sys
random.seed(1)
def s(x): b=x.encode(); return struct.pack("<Q",len(b))+b
def kv_str(k,v): return s(k)+struct.pack("<I",8)+s(v)
def kv_u32(k,v): return s(k)+struct.pack("<I",4)+struct.pack("<I",v)
def kv_f32(k,v): return s(k)+struct.pack("<I",6)+struct.pack("<f",v)
def kv_arr_str(k,items): return s(k)+struct.pack("<I",9)+struct.pack("<I",8)+struct.pack("<Q",len(items))+b"".join(s(i) for i in items)
def kv_arr_i32(k,items): return s(k)+struct.pack("<I",9)+struct.pack("<I",5)+struct.pack("<Q",len(items))+b"".join(struct.pack("<i",i) for i in items)
V=128256
toks=["tok%06d_%s"%(i,"x"*random.randint(0,6)) for i in range(V)]
merges=["m%d a%d"%(i,i%977) for i in range(280147)]
kvs=[kv_str("general.architecture","llama"),kv_u32("llama.block_count",32),kv_u32("llama.context_length",8192),
 kv_u32("llama.embedding_length",4096),kv_u32("llama.feed_forward_length",14336),kv_u32("llama.attention.head_count",32),
 kv_u32("llama.attention.head_count_kv",8),kv_f32("llama.rope.freq_base",500000.0),kv_f32("llama.attention.layer_norm_rms_epsilon",1e-5),
 kv_str("tokenizer.ggml.model","gpt2"),kv_str("tokenizer.ggml.pre","llama-bpe"),kv_arr_str("tokenizer.ggml.tokens",toks),
 kv_arr_i32("tokenizer.ggml.token_type",[1]*V),kv_arr_str("tokenizer.ggml.merges",merges)]
Q4K,Q6K,F32=12,14,0
def nbytes(t,ne0,rows): return {Q4K:144,Q6K:210}[t]*(ne0//256)*rows if t!=F32 else 4*ne0*rows
tensors=[("token_embd.weight",[4096,V],Q4K)]
for l in range(32):
    p="blk.%d."%l
    tensors+= [(p+"attn_norm.weight",[4096],F32),(p+"attn_q.weight",[4096,4096],Q4K),(p+"attn_k.weight",[4096,1024],Q4K),
      (p+"attn_v.weight",[4096,1024],Q6K),(p+"attn_output.weight",[4096,4096],Q4K),(p+"ffn_norm.weight",[4096],F32),
      (p+"ffn_gate.weight",[4096,14336],Q4K),(p+"ffn_up.weight",[4096,14336],Q4K),(p+"ffn_down.weight",[14336,4096],Q6K)]
tensors+=[("output_norm.weight",[4096],F32),("output.weight",[4096,V],Q6K)]
hdr=b"GGUF"+struct.pack("<I",3)+struct.pack("<Q",len(tensors))+struct.pack("<Q",len(kvs))+b"".join(kvs)
off=0
for n,d,t in tensors:
    hdr+=s(n)+struct.pack("<I",len(d))+b"".join(struct.pack("<Q",x) for x in d)+struct.pack("<I",t)+struct.pack("<Q",off)
    nb=nbytes(t,d[0],d[1] if len(d)>1 else 1); off+= (nb+31)//32*32
hdr+=b"\0"*((-len(hdr))%32)
with open((sys.argv[1] if len(sys.argv) > 1 else "/tmp/llama8b-shape.gguf"),"wb") as f: f.write(hdr); f.truncate(len(hdr)+off)
print(len(hdr), len(hdr)+off)
