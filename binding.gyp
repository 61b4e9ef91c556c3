{
  # MPI (native/mpi.cc) when scripts/mpi-flags.cjs finds mpi.h; KDQAT_MPI=0 builds without it.
  "variables": {"kdqat_mpi%": "<!(node scripts/mpi-flags.cjs has)"},
  "targets": [
    {
      "target_name": "kdqat",
      "sources": [
        "native/addon.cc",
        "native/allocator.cc",
        "native/pool.cc",
        "native/amx.cc",
        "native/gemm.cc",
        "native/gemm_args.cc",
        "native/gemm_bf16.cc",
        "native/gemm_grid.cc",
        "native/gemm_q8.cc",
        "native/gemm_q8_kernels.cc",
        "native/gemm_q8_rows.cc",
        "native/elementwise.cc",
        "native/elementwise_loops.cc",
        "native/elementwise_unary.cc",
        "native/elementwise_reduce.cc",
        "native/elementwise_layout.cc",
        "native/nn.cc",
        "native/nn_isa.cc",
        "native/attention.cc",
        "native/attention_avx2.cc",
        "native/attention_avx512.cc",
        "native/attention_portable.cc",
        "native/optim.cc",
        "native/quant.cc",
        "native/quant_isa.cc",
        "native/kquant.cc",
        "native/kquant_isa.cc",
        "native/kl_fused.cc",
        "native/mpi.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      # GCC 12 reports the deliberately undefined pass-through operand of its own AVX-512
      # intrinsics (_mm512_undefined_ps in avx512fintrin.h) as uninitialized at every inlined
      # call: hundreds of false positives from the compiler's headers, none from kdqat's code.
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-ffp-contract=off", "-fno-math-errno",
                    "-Wno-maybe-uninitialized", "-Wno-uninitialized"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["kdqat_mpi==1", {
          "defines": ["KDQAT_MPI"],
          "cflags_cc": ["<!@(node scripts/mpi-flags.cjs compile)"],
          "libraries": ["<!@(node scripts/mpi-flags.cjs link)"]
        }]
      ]
    }
  ]
}
