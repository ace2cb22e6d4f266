// hwprune multi-threshold kernel for hls4ml projects (io_parallel).
// Part of hwprune; copied into every generated project that has a Threshold op.
//
// y[i] = base + step * #{k : x[i] >= thresholds[i][k]}: the IR's Threshold op. A bipolar sign
// is one threshold 0 with base -1 and step 2; FINN-style multi-thresholds (a folded BatchNorm
// and activation quantizer) are the general case. It must equal hwprune.ir.golden's Threshold
// evaluator bit for bit. ap_int compares values of different widths and signedness exactly.
//
// CONFIG_T provides:
//   n_in                              vector size
//   n_thresholds                      thresholds per element (hwprune pads short lists with a
//                                     value above the input range, which no input reaches)
//   base, step                        output level of count 0 and the step between levels
//   threshold_t                       integer type of the thresholds, which hwprune keeps
//                                     within the input range plus one (it folds thresholds
//                                     every input passes into base and drops unreachable ones)
//   work_t                            integer type holding base + step * j for j = 0 to
//                                     n_thresholds (every partial sum) and step
//   thresholds[n_in][n_thresholds]    constant thresholds of each element

#ifndef HWPRUNE_THRESHOLD_H_
#define HWPRUNE_THRESHOLD_H_

#include "ap_int.h"

namespace nnet {

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_threshold(data_T x[CONFIG_T::n_in], res_T y[CONFIG_T::n_in]) {
    // Comparisons with constants and adders of a constant: inlined like the requantization.
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        // step is added once per threshold passed: no multiplier, and each partial sum is
        // an output level base + step * j, which work_t holds.
        const typename CONFIG_T::work_t step = CONFIG_T::step;
        typename CONFIG_T::work_t acc = CONFIG_T::base;
        for (unsigned k = 0; k < CONFIG_T::n_thresholds; k++) {
            #pragma HLS UNROLL
            if (x[i] >= CONFIG_T::thresholds[i][k]) {
                acc += step;
            }
        }
        y[i] = acc;
    }
}

} // namespace nnet

#endif
