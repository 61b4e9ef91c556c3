"""What PyTorch runs on this machine, for the `isa` field of the torch bench records (bench/env.ts):
torch's ATen CPU capability (torch.backends.cpu.get_cpu_capability() where it exists, else the
"CPU capability usage" line of torch.__config__.show(), as in torch 1.13) and the BLAS that
torch.mm calls (OpenBLAS's own openblas_get_config()/openblas_get_corename() when OpenBLAS is
mapped into the process, else BLAS_INFO from the build settings). Prints one JSON object.

Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import ctypes, json, re
import torch

cfg = torch.__config__.show()
cap = None
try:
    cap = torch.backends.cpu.get_cpu_capability()
except Exception:
    m = re.search(r"CPU capability usage:\s*(\S+)", cfg)
    cap = m.group(1) if m else None
torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # loads the BLAS
blas, core = None, None
for lib in sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower() and l.split()[-1].startswith("/")}):
    try:
        d = ctypes.CDLL(lib)
        d.openblas_get_config.restype = ctypes.c_char_p
        d.openblas_get_corename.restype = ctypes.c_char_p
        blas, core = d.openblas_get_config().decode(), d.openblas_get_corename().decode()
        break
    except (OSError, AttributeError):
        continue
if blas is None:
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    blas = m.group(1) if m else "unknown"
print(json.dumps({"torch": torch.__version__, "aten": (cap or "unknown").lower(), "blas": blas, "blas_core": core}))
