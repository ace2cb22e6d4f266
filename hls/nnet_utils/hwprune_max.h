// hwprune max-pooling kernel for hls4ml projects (io_parallel).
// Part of hwprune; copied into every generated project that has a Max op.
//
// y[i] = max(x[j] for j in groups[i]): the IR's Max op, with every pooling window listed as
// explicit input indices, so any pooling geometry (and padding-free partial windows) is one
// kernel. It must equal hwprune.ir.golden's Max evaluator bit for bit; comparisons are exact
// because every value is an integer in the input type and the maximum is one of the inputs.
//
// CONFIG_T provides:
//   n_in, n_out                   input and output vector sizes
//   group_size                    inputs per window (short windows repeat an index: max(a, a) = a)
//   groups[n_out][group_size]     constant input indices of each window

#ifndef HWPRUNE_MAX_H_
#define HWPRUNE_MAX_H_

#include "ap_int.h"

namespace nnet {

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_max(data_T x[CONFIG_T::n_in], res_T y[CONFIG_T::n_out]) {
    // Comparators and multiplexers on wires picked by constant indices: inlined like the
    // requantization, so the top function's pipeline schedules them.
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        data_T v[CONFIG_T::group_size];
        #pragma HLS ARRAY_PARTITION variable=v complete
        for (unsigned k = 0; k < CONFIG_T::group_size; k++) {
            #pragma HLS UNROLL
            v[k] = x[CONFIG_T::groups[i][k]];
        }
        // A balanced tree, depth ceil(log2(group_size)) instead of a chain of group_size - 1
        // comparisons: after the round with stride s, v[k] (k a multiple of 2s) holds the
        // maximum of v[k .. k + 2s).
        for (unsigned s = 1; s < CONFIG_T::group_size; s *= 2) {
            #pragma HLS UNROLL
            for (unsigned k = 0; k + s < CONFIG_T::group_size; k += 2 * s) {
                #pragma HLS UNROLL
                if (v[k + s] > v[k]) {
                    v[k] = v[k + s];
                }
            }
        }
        y[i] = v[0];
    }
}

} // namespace nnet

#endif
