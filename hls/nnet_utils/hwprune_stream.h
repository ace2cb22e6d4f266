// hwprune streaming kernels for hls4ml projects (io_stream).
// Part of hwprune; copied into every generated project of a streaming design.
//
// The convolutional front of the network streams, as hwprune's Verilog does (codegen/stream.py):
// the image arrives as an hls::stream of pixels, raster order, one pixel = an nnet::array of its
// channels. Each stream stage (hwprune_stream_stage) walks its input's padded grid one position
// per iteration: at a padding position it shifts in the padding value (and a 'real pixel' flag
// of 0) without reading, at a real one it reads a pixel and shifts it in. The shift register
// holds the last `length` positions, which is exactly the window of the newest position's output
// when that position completes one: the kernel then runs once, on the window's taps, and writes
// the output pixel. The kernel is the stage's small graph, generated per stage as
// CONFIG_T::kernel in parameters.h from hwprune's zero-free layer structs (one product per
// nonzero kernel weight), so the arithmetic is the unrolled layers', per output pixel.
// hwprune_collect gathers the last stage's pixels into the head's input vector; the head's
// layers then run as in the io_parallel project, one vector per image (the overloads below).
//
// The line buffer is the window's shift register, completely partitioned: the runs between taps
// are plain shifts, which synthesis maps to shift-register LUTs as it does for the Verilog.
// Its contents need no reset: every window an image completes lies inside that image's padded
// grid, which the stage walks fully on each call.
//
// A stage's CONFIG_T provides:
//   in_height, in_width, n_chan          the input map and its pixel's channels
//   pad_top, pad_left                    padding before the map (after it: padded_* - in_* - pad_*)
//   padded_height, padded_width          the padded grid the stage walks
//   first_row, first_col                 the newest position's offset from its window's corner
//   stride_height, stride_width          between two output positions
//   out_height, out_width, n_out         the output map and its pixel's channels
//   n_taps, taps[n_taps]                 each tap's position in the shift register (0 = newest)
//   length                               positions the shift register holds (taps[0] + 1)
//   reuse_factor                         a position per this many cycles (the loop's II); the
//                                        kernel's Dense shares its multipliers that many times
//   n_flags                              n_taps when the kernel reads a 'real pixel' flag per tap
//   n_window                             kernel inputs: n_taps * n_chan taps, then n_flags flags
//   pad                                  the value padding reads as
//   window_t, out_t                      the kernel's input and output element types
//   kernel(window_t x[n_window], out_t y[n_out])
// The collector's CONFIG_T provides n_pixels, n_chan, n_out and index[n_pixels][n_chan], the
// element of the output vector each channel of each pixel is (-1: none).

#ifndef HWPRUNE_STREAM_H_
#define HWPRUNE_STREAM_H_

#include "ap_int.h"
#include "hls_stream.h"
#include "hwprune_dense.h"
#include "hwprune_max.h"
#include "hwprune_requant.h"
#include "hwprune_threshold.h"

namespace nnet {

// One vector through a stream of one element per image (an nnet::array).

template <class data_T, unsigned N> void hwprune_read_vector(hls::stream<data_T> &x, typename data_T::value_type a[N]) {
    #pragma HLS INLINE
    data_T v = x.read();
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        a[i] = v[i];
    }
}

template <class res_T, unsigned N> void hwprune_write_vector(typename res_T::value_type a[N], hls::stream<res_T> &y) {
    #pragma HLS INLINE
    res_T v;
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        v[i] = a[i];
    }
    y.write(v);
}

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_stream_stage(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    typedef typename CONFIG_T::window_t window_t;
    // static: the registers of the hardware, kept between calls (one call per image).
    static window_t line[CONFIG_T::length][CONFIG_T::n_chan];
    #pragma HLS ARRAY_PARTITION variable=line complete dim=0
    static bool real[CONFIG_T::length];
    #pragma HLS ARRAY_PARTITION variable=real complete
Rows:
    for (unsigned py = 0; py < CONFIG_T::padded_height; py++) {
    Columns:
        for (unsigned px = 0; px < CONFIG_T::padded_width; px++) {
            #pragma HLS LOOP_FLATTEN
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            const bool pad = py < CONFIG_T::pad_top || py >= CONFIG_T::pad_top + CONFIG_T::in_height ||
                             px < CONFIG_T::pad_left || px >= CONFIG_T::pad_left + CONFIG_T::in_width;
            data_T pixel;
            if (!pad) {
                pixel = x.read();
            }
        Shift:
            for (unsigned s = CONFIG_T::length - 1; s > 0; s--) {
                #pragma HLS UNROLL
                for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                    #pragma HLS UNROLL
                    line[s][c] = line[s - 1][c];
                }
                real[s] = real[s - 1];
            }
            // A pixel's channels fit window_t: it holds every value the input map holds.
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                line[0][c] = pad ? window_t(CONFIG_T::pad) : window_t(pixel[c]);
            }
            real[0] = !pad;
            const bool row_done = py >= CONFIG_T::first_row && (py - CONFIG_T::first_row) % CONFIG_T::stride_height == 0 &&
                                  (py - CONFIG_T::first_row) / CONFIG_T::stride_height < CONFIG_T::out_height;
            const bool col_done = px >= CONFIG_T::first_col && (px - CONFIG_T::first_col) % CONFIG_T::stride_width == 0 &&
                                  (px - CONFIG_T::first_col) / CONFIG_T::stride_width < CONFIG_T::out_width;
            if (row_done && col_done) {
                window_t w[CONFIG_T::n_window];
                #pragma HLS ARRAY_PARTITION variable=w complete
                for (unsigned t = 0; t < CONFIG_T::n_taps; t++) {
                    #pragma HLS UNROLL
                    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                        #pragma HLS UNROLL
                        w[t * CONFIG_T::n_chan + c] = line[CONFIG_T::taps[t]][c];
                    }
                }
                for (unsigned t = 0; t < CONFIG_T::n_flags; t++) {
                    #pragma HLS UNROLL
                    w[CONFIG_T::n_taps * CONFIG_T::n_chan + t] = real[CONFIG_T::taps[t]];
                }
                typename CONFIG_T::out_t o[CONFIG_T::n_out];
                #pragma HLS ARRAY_PARTITION variable=o complete
                CONFIG_T::kernel(w, o);
                res_T out;
                for (unsigned k = 0; k < CONFIG_T::n_out; k++) {
                    #pragma HLS UNROLL
                    out[k] = o[k];
                }
                y.write(out);
            }
        }
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_collect(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    typename res_T::value_type v[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=v complete
Pixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE II=1
        data_T pixel = x.read();
        for (unsigned j = 0; j < CONFIG_T::n_chan; j++) {
            #pragma HLS UNROLL
            // Exact: an element the map holds lies in the vector's element range.
            const int e = CONFIG_T::index[p][j];
            if (e >= 0) {
                v[e] = pixel[j];
            }
        }
    }
    hwprune_write_vector<res_T, CONFIG_T::n_out>(v, y);
}

// The head's layers on streams of one vector per image: the io_parallel kernels between a read
// and a write (overloads, chosen by the stream arguments hls4ml's io_stream top function passes).

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_dense(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    typename data_T::value_type a[CONFIG_T::n_in];
    typename res_T::value_type b[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=a complete
    #pragma HLS ARRAY_PARTITION variable=b complete
    hwprune_read_vector<data_T, CONFIG_T::n_in>(x, a);
    hwprune_dense<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(a, b);
    hwprune_write_vector<res_T, CONFIG_T::n_out>(b, y);
}

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_requant(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    typename data_T::value_type a[CONFIG_T::n_in];
    typename res_T::value_type b[CONFIG_T::n_in];
    #pragma HLS ARRAY_PARTITION variable=a complete
    #pragma HLS ARRAY_PARTITION variable=b complete
    hwprune_read_vector<data_T, CONFIG_T::n_in>(x, a);
    hwprune_requant<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(a, b);
    hwprune_write_vector<res_T, CONFIG_T::n_in>(b, y);
}

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_max(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    typename data_T::value_type a[CONFIG_T::n_in];
    typename res_T::value_type b[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=a complete
    #pragma HLS ARRAY_PARTITION variable=b complete
    hwprune_read_vector<data_T, CONFIG_T::n_in>(x, a);
    hwprune_max<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(a, b);
    hwprune_write_vector<res_T, CONFIG_T::n_out>(b, y);
}

template <class data_T, class res_T, typename CONFIG_T>
void hwprune_threshold(hls::stream<data_T> &x, hls::stream<res_T> &y) {
    typename data_T::value_type a[CONFIG_T::n_in];
    typename res_T::value_type b[CONFIG_T::n_in];
    #pragma HLS ARRAY_PARTITION variable=a complete
    #pragma HLS ARRAY_PARTITION variable=b complete
    hwprune_read_vector<data_T, CONFIG_T::n_in>(x, a);
    hwprune_threshold<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(a, b);
    hwprune_write_vector<res_T, CONFIG_T::n_in>(b, y);
}

} // namespace nnet

#endif
