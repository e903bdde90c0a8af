"""What the benchmarks say about the CPU they ran on: one reader of
/proc/cpuinfo for all of them.  A VM's model name alone may say only "AMD
EPYC" (for Zen 3, Zen 4 and Zen 5 alike), so the family and model go with it,
and the widest vector unit with the file-name tag."""
import platform


def cpu_info():
    """(model name, CPU family, model, flags) of the first CPU in
    /proc/cpuinfo; where there is none, the platform's name and Nones."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return (fields.get("model name", platform.processor() or platform.machine()),
            fields.get("cpu family"), fields.get("model"), fields.get("flags", "").split())


def cpu_name():
    """E.g. "AMD EPYC, family 26 model 2"."""
    name, family, model, _ = cpu_info()
    return name if family is None else f"{name}, family {family} model {model}"


def cpu_slug():
    """A file-name tag for this CPU: its name, family and model, and its
    widest vector unit, e.g. amd-epyc-f25-m1-avx2."""
    name, family, model, flags = cpu_info()
    words = "".join(c if c.isalnum() else " " for c in name.lower()).split()
    words = [w for w in words if w not in ("r", "tm", "processor", "cpu")]
    if family is not None:
        words += [f"f{family}", f"m{model}"]
    words.append("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse2")
    return "-".join(words)
