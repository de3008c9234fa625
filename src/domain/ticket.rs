//! GN6 ticket data as the domain sees it. Field names follow the GN6 wire names
//! (Catalan) because `valors_defecte` rules set fields by those names.

/// State literals of GN6.
pub const ESTAT_OBERT: &str = "TIQUET_STATUS_OBERT";
pub const ESTAT_TANCAT: &str = "TIQUET_STATUS_TANCAT";

/// A ticket as returned by ConsultaTiquetsDades.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketInfo {
    pub codi_tiquet: String,
    pub estat: String,
    pub solicitant: String,
    pub email_solicitant: String,
    pub assumpte: String,
    pub descripcio: String,
    pub equip_resolutor: String,
    pub urgencia: String,
    pub data_creacio: String,
    pub data_tancament: String,
    /// Every field the service returned, in order, for display (`show-ticket`).
    pub fields: Vec<(String, String)>,
}

impl TicketInfo {
    pub fn is_closed(&self) -> bool {
        self.estat == ESTAT_TANCAT
    }
}

macro_rules! wire_struct {
    ($(#[$m:meta])* $name:ident { $($field:ident => $wire:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $(pub $field: String),* }

        impl $name {
            /// Wire names of every field, in WSDL order.
            pub const WIRE_NAMES: &'static [&'static str] = &[$($wire),*];

            /// Sets a field by its GN6 wire name (as used in `valors_defecte`).
            /// Returns false when the name is not a field of this operation.
            pub fn set(&mut self, wire_name: &str, value: &str) -> bool {
                match wire_name {
                    $($wire => { self.$field = value.to_string(); true })*
                    _ => false,
                }
            }

            /// Reads a field by its GN6 wire name.
            pub fn get(&self, wire_name: &str) -> Option<&str> {
                match wire_name {
                    $($wire => Some(self.$field.as_str()),)*
                    _ => None,
                }
            }

            /// (wire name, value) pairs in WSDL order.
            pub fn pairs(&self) -> Vec<(&'static str, &str)> {
                vec![$(($wire, self.$field.as_str())),*]
            }
        }
    };
}

wire_struct!(
    /// AltaTiquet parameters (without the GN6 credentials). Empty = unused.
    NewTicket {
        solicitant => "solicitant",
        email_solicitant => "emailSolicitant",
        client => "client",
        assumpte => "assumpte",
        descripcio => "descripcio",
        equip_resolutor => "equipResolutor",
        assignat_a => "assignatA",
        producte => "producte",
        subservei => "subservei",
        urgencia => "urgencia",
        impacte => "impacte",
        proces => "proces",
        proces_origen => "procesOrigen",
        estat => "estat",
        ip => "ip",
        enviar_missatge_creacio => "enviarMissatgeCreacio",
        enviar_missatge_tancament => "enviarMissatgeTancament",
        imputacio_automatica => "imputacioAutomatica",
        infraestructura => "infraestructura",
    }
);

wire_struct!(
    /// ModificarTiquet parameters (without the GN6 credentials). Empty = leave unchanged.
    TicketChanges {
        codi_tiquet => "codiTiquet",
        equip_resolutor => "equipResolutor",
        assignat_a => "assignatA",
        proces => "proces",
        estat => "estat",
        data_caducitat => "dataCaducitat",
        codi_tancament => "codiTancament",
        producte => "producte",
        subservei => "subservei",
        tipus => "tipus",
        data_resol => "dataResol",
        solicitant => "solicitant",
        client => "client",
        telefon_solicitant => "telefonSolicitant",
        email_solicitant => "emailSolicitant",
        dades_contacte_solicitant => "dadesContacteSolicitant",
        num_inventari => "numInventari",
        num_elements => "numElements",
        ip => "ip",
        assumpte => "assumpte",
        descripcio => "descripcio",
        origen => "origen",
        urgencia => "urgencia",
        impacte => "impacte",
    }
);

/// Public or private comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKind {
    Public,
    Private,
}

impl CommentKind {
    pub fn wire(self) -> &'static str {
        match self {
            CommentKind::Public => "COMENT_TIQUET_PUBLIC",
            CommentKind::Private => "COMENT_TIQUET_PRIVAT",
        }
    }
}

/// AfegirComentariTiquet parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    pub codi_tiquet: String,
    /// Author's username.
    pub usuari: String,
    /// HTML text.
    pub descripcio: String,
    pub tipus: CommentKind,
    /// esNotificat: S / N.
    pub notificar: bool,
}

/// AnnexarFitxerTiquet parameters; the adapter base64-encodes `content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAttachment<'a> {
    pub codi_tiquet: &'a str,
    pub usuari: &'a str,
    pub nom_fitxer: &'a str,
    pub content: &'a [u8],
}
