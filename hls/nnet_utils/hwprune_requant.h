// hwprune requantization kernel for hls4ml projects (io_parallel).
// Part of hwprune; copied unchanged into every generated project by hls4ml's register_source.
//
// y = clip(round(x * 2^-s), lo, hi) elementwise, on integers only. A shift s > 0 is a right
// shift by shift_right = s (arithmetic, i.e. floor) optionally rounded half to even; s <= 0 is
// a left shift by shift_left = -s. It must equal hwprune.ir.graph.shift_round bit for bit.
//
// CONFIG_T provides:
//   n_in                      vector size
//   shift_left, shift_right   at most one of them nonzero
//   half_even                 round half to even instead of floor (only when shift_right > 0)
//   half                      2^(shift_right - 1) when half_even, else 0
//   clip_lo, clip_hi, lo, hi  clip bounds; a flag is false when the range proves it cannot fire
//   work_t                    integer type holding x << shift_left, the rounded quotient + 1,
//                             q * 2^s, the remainder and half, and lo/hi where a clip can fire

#ifndef HWPRUNE_REQUANT_H_
#define HWPRUNE_REQUANT_H_

#include "ap_int.h"

namespace nnet {

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_requant(data_T x[CONFIG_T::n_in], res_T y[CONFIG_T::n_in]) {
    // Shifts by constants are wiring and the clip is two comparators: no reason to keep a
    // function boundary (and its registers) around them.
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        const int shift_left = CONFIG_T::shift_left, shift_right = CONFIG_T::shift_right;
        typename CONFIG_T::work_t v = x[i];
        v = v << shift_left;
        // ap_int's >> on a signed type is arithmetic, which is floor division by 2^s.
        typename CONFIG_T::work_t q = v >> shift_right;
        if (CONFIG_T::half_even) {
            // rem = v - q * 2^s lies in [0, 2^s); round up above half, and at exactly half
            // only when that makes the quotient even (q odd).
            typename CONFIG_T::work_t rem = v - (q << shift_right);
            const typename CONFIG_T::work_t half = CONFIG_T::half;
            if (rem > half || (rem == half && q[0] == 1)) {
                q = q + 1;
            }
        }
        // Compared in work_t, which holds lo (hi) whenever clip_lo (clip_hi) is set; when a
        // flag is clear the bound may not fit, but it is then never used.
        const typename CONFIG_T::work_t lo = CONFIG_T::lo, hi = CONFIG_T::hi;
        if (CONFIG_T::clip_lo && q < lo) {
            q = lo;
        }
        if (CONFIG_T::clip_hi && q > hi) {
            q = hi;
        }
        y[i] = q;
    }
}

} // namespace nnet

#endif
