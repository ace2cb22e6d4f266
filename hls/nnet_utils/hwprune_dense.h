// hwprune zero-skipping Dense kernel for hls4ml projects (io_parallel).
// Part of hwprune; copied unchanged into every generated project by hls4ml's register_source.
//
// The layer's arithmetic is not here: it is generated per layer as CONFIG_T::compute, a static
// member of the layer's config struct in parameters.h, holding exactly one product per nonzero
// weight (weights are literals, so there is no weight array that could hold a zero); compute
// calls one inlined function per output row (rowN), which g++ compiles far faster than one
// function holding every product, for the same hardware. This
// header only places that code in a pipeline and bounds how many multipliers it may use.
// hwprune also sets hls4ml's PipelineInterval to R, so the top function carries
// "#pragma HLS PIPELINE II=R" and the whole network accepts one vector every R cycles.
//
// CONFIG_T provides:
//   n_in, n_out       input and output vector sizes
//   n_nonzero         number of product terms in compute (the nonzero weights)
//   reuse_factor      R >= 1: a new input vector is accepted every R cycles
//   multiplier_limit  ceil(n_nonzero / R), at least 1
//   accum_t, weight_t integer types derived by hwprune from exact value ranges
//   compute<data_T, res_T>(x, y)

#ifndef HWPRUNE_DENSE_H_
#define HWPRUNE_DENSE_H_

#include "ap_int.h"

namespace nnet {

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_dense(data_T x[CONFIG_T::n_in], res_T y[CONFIG_T::n_out]) {
    // Initiation interval R: the function starts on a new input every R cycles, so the
    // scheduler may spread the layer's products over R cycles and time-share each multiplier
    // between up to R of them. With R = 1 every product gets its own operator.
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    // Cap the number of multiplier instances in this function (and the code inlined into it)
    // at ceil(nonzero / R): together with II = R this is what makes the sharing happen. The
    // cap counts only the products that exist, i.e. the nonzero weights, never n_in * n_out.
    // Multiplications by a constant that HLS turns into shifts and adds (x1, x2, x4, ...) use
    // no multiplier and are not limited.
    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
    // x and y need no partitioning here: hls4ml partitions (or reshapes) every io_parallel
    // array where it is declared, in the top function, so every element is a register.
    CONFIG_T::template compute<data_T, res_T>(x, y);
}

} // namespace nnet

#endif
