package data

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg reports errors by calling error_exit, whose default exits the
// process; this manager jumps back to the decode call instead.
typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	char msg[JMSG_LENGTH_MAX];
} vf_jpeg_err;

static void vf_jpeg_error_exit(j_common_ptr cinfo) {
	vf_jpeg_err *e = (vf_jpeg_err *)cinfo->err;
	(*cinfo->err->format_message)(cinfo, e->msg);
	longjmp(e->jump, 1);
}

static void vf_jpeg_warn(j_common_ptr cinfo, int level) {
	// A file cut short decodes to grey rows with only a warning; PIL
	// refuses it ("image file is truncated"), and so do we. Other warnings
	// on damaged but decodable files are ignored, as PIL does.
	if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
		vf_jpeg_err *e = (vf_jpeg_err *)cinfo->err;
		(*cinfo->err->format_message)(cinfo, e->msg);
		longjmp(e->jump, 1);
	}
}

// vf_jpeg reads the header of a JPEG in memory (width, height, colour
// space) and, when out is not NULL, decodes it into out as packed RGB with
// libjpeg's defaults (islow DCT, fancy upsampling), which is what PIL does
// for RGB and greyscale JPEGs. It returns 0 on success, else fills msg.
static int vf_jpeg(const unsigned char *buf, unsigned long n, unsigned char *out, int *w, int *h, int *cs, char *msg) {
	struct jpeg_decompress_struct cinfo;
	vf_jpeg_err jerr;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = vf_jpeg_error_exit;
	jerr.pub.emit_message = vf_jpeg_warn;
	if (setjmp(jerr.jump)) {
		strncpy(msg, jerr.msg, JMSG_LENGTH_MAX - 1);
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, buf, n);
	jpeg_read_header(&cinfo, TRUE);
	if (out == NULL) {
		*w = cinfo.image_width;
		*h = cinfo.image_height;
		*cs = cinfo.jpeg_color_space;
		jpeg_destroy_decompress(&cinfo);
		return 0;
	}
	cinfo.out_color_space = JCS_RGB;
	jpeg_start_decompress(&cinfo);
	if ((int)cinfo.output_width != *w || (int)cinfo.output_height != *h || cinfo.output_components != 3) {
		snprintf(msg, JMSG_LENGTH_MAX, "unexpected output %ux%ux%d", cinfo.output_width, cinfo.output_height, cinfo.output_components);
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = out + (size_t)cinfo.output_scanline * (size_t)*w * 3;
		jpeg_read_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return 0;
}
*/
import "C"

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"unsafe"
)

// isJPEG reports whether b starts with a JPEG SOI marker.
func isJPEG(b []byte) bool { return len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }

// maxJPEGPixels bounds a JPEG's decoded size (a corrupt header must not
// make us allocate gigabytes): 20,000 x 20,000 covers any photograph.
const maxJPEGPixels = 400_000_000

// decodeJPEG decodes JPEG bytes through libjpeg-turbo, the library PIL
// and torchvision decode with, so pixels match a PyTorch pipeline's:
// Go's image/jpeg upsamples 4:2:0 chroma differently (tens of levels apart
// at colour edges). CMYK and YCCK JPEGs, which libjpeg cannot turn into
// RGB, go through Go's decoder.
func decodeJPEG(path string, b []byte) (*rgbImage, error) {
	var w, h, cs C.int
	var msgBuf [C.JMSG_LENGTH_MAX]C.char
	msg := &msgBuf[0]
	// Go memory without pointers may be passed to C for the call: libjpeg
	// reads the file bytes and writes the pixels in place, no copies.
	src := (*C.uchar)(unsafe.Pointer(&b[0]))
	n := C.ulong(len(b))
	if C.vf_jpeg(src, n, nil, &w, &h, &cs, msg) != 0 {
		return nil, fmt.Errorf("decode JPEG %s: %s (expected a JPEG image)", path, C.GoString(msg))
	}
	if cs == C.JCS_CMYK || cs == C.JCS_YCCK {
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("decode JPEG %s: %w", path, err)
		}
		rgb := toRGB(img)
		return &rgb, nil
	}
	if int64(w)*int64(h) > maxJPEGPixels || w <= 0 || h <= 0 {
		return nil, fmt.Errorf("decode JPEG %s: %dx%d pixels, expected at most %d", path, w, h, maxJPEGPixels)
	}
	out := rgbImage{W: int(w), H: int(h), Pix: make([]uint8, int(w)*int(h)*3)}
	if C.vf_jpeg(src, n, (*C.uchar)(unsafe.Pointer(&out.Pix[0])), &w, &h, &cs, msg) != 0 {
		return nil, fmt.Errorf("decode JPEG %s: %s", path, C.GoString(msg))
	}
	return &out, nil
}

// rgbImage is an image.Image, so that a decoded JPEG goes to the resizers
// as it is: toRGB takes its pixels without a copy.
func (m *rgbImage) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m *rgbImage) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image.
func (m *rgbImage) At(x, y int) color.Color {
	p := m.Pix[(y*m.W+x)*3:]
	return color.RGBA{R: p[0], G: p[1], B: p[2], A: 255}
}

// rgbToImage wraps packed RGB as an image.Image for code that takes one.
func rgbToImage(m *rgbImage) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i := range m.W * m.H {
		copy(img.Pix[4*i:4*i+3], m.Pix[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}
