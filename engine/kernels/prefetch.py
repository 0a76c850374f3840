"""Software prefetch: histogram rows' cache lines requested ahead of their increments.

A block's partial histograms (market factors, revenue, concentration, finance
fans: about 2.2 MB for the default book) are larger than a 512 KB L2, and every
group of ``LANES`` paths increments each month's rows once. Without a hint the
first increment of a row waits for its cache line; :func:`prefetch_row` asks for
a row's lines one step ahead (the next month, or the next row of a scatter), so
that they arrive while the current row is counted. A prefetch is only a hint:
it changes no value, faults on no address and costs one instruction per line.

``prefetch_row`` is a numba intrinsic for ``llvm.prefetch`` (write, keep in all
cache levels, data cache), the same instruction C compilers emit for
``__builtin_prefetch(p, 1, 3)``.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["CACHE_LINE", "COUNTS_PER_LINE", "prefetch_row"]

#: Bytes per cache line (x86-64 and most ARM cores).
CACHE_LINE = 64
#: int16 histogram counts per cache line (a block's histograms count in int16).
COUNTS_PER_LINE = CACHE_LINE // 2


@intrinsic
def prefetch_row(typingctx: Any, arr: Any, index: Any) -> Any:
    """Prefetch the cache line of ``arr[index]`` for writing (``index``: a tuple of ints).

    Parameters
    ----------
    typingctx : numba typing context
        Supplied by numba.
    arr : numba.types.Array
        The array's type (any layout).
    index : numba.types.BaseTuple
        One integer index per axis; past the array's end is allowed (a prefetch
        never faults and no value is read or written).

    Returns
    -------
    tuple
        The signature ``void(arr, index)`` and its code generator (None when
        the types do not fit: numba then reports a typing error).
    """
    if not isinstance(arr, types.Array) or not isinstance(index, types.BaseTuple):
        return None
    if len(index) != arr.ndim or not all(isinstance(i, types.Integer) for i in index):
        return None
    sig = types.void(arr, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        indices = [
            context.cast(builder, i, t, types.intp)
            for i, t in zip(cgutils.unpack_tuple(builder, args[1]), idxty, strict=True)
        ]
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, indices, wraparound=False, boundscheck=False
        )
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # write, highest locality (all levels), data cache
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
